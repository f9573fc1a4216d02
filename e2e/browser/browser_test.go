package browser

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

const goodPage = `<!doctype html><html lang="en"><head><title>Good</title><style>a { display: inline-block; padding: 6px; }</style></head><body>
<header><a href="/">Trellis</a></header>
<nav aria-label="Pages"><a href="/good">Good</a></nav>
<main><h1>Good page</h1>
<table id="t"><caption>Census</caption><thead><tr><th scope="col">Clinic</th><th scope="col">Census</th></tr></thead>
<tbody><tr><th scope="row">Riverside</th><td data-kpi="census">12</td></tr></tbody></table>
<svg role="img" viewBox="0 0 10 10"><title>Census chart</title><desc>Riverside 12</desc><rect width="5" height="5"/></svg>
<svg aria-hidden="true" viewBox="0 0 1 1"><rect width="1" height="1"/></svg>
<img src="data:image/gif;base64,R0lGODlhAQABAAAAACw=" alt="">
<form><label for="q">Search</label><input id="q" name="q"><label>Role <select name="role"><option>a</option></select></label>
<button type="submit"><svg aria-hidden="true" viewBox="0 0 1 1"></svg>Go</button></form>
</main></body></html>`

const badPage = `<!doctype html><html><head><title>Bad</title></head><body>
<div><h1>One</h1><h1>Two</h1>
<table><tr><th>Clinic</th></tr><tr><td>1</td></tr></table>
<table><caption>No headers</caption><tr><td>1</td></tr></table>
<svg viewBox="0 0 1 1"><rect width="1" height="1"/></svg><img src="x.png">
<input name="q"><select name="s"></select><textarea></textarea>
<a href="/x"></a><button></button><a href="/y"><img src="y.png" alt=""></a>
<p id="dup">a</p><p id="dup">b</p></div></body></html>`

func serve(t *testing.T) *httptest.Server {
	mux := http.NewServeMux()
	mux.HandleFunc("/good", func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte(goodPage)) })
	mux.HandleFunc("/bad", func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte(badPage)) })
	mux.HandleFunc("/signin", func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			_ = r.ParseForm()
			http.SetCookie(w, &http.Cookie{Name: "session", Value: r.Form.Get("role") + "." + strings.ReplaceAll(r.Form.Get("clinics"), ",", "."),
				Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode})
			http.Redirect(w, r, "/good", http.StatusSeeOther)
			return
		}
		_, _ = w.Write([]byte(`<!doctype html><html lang="en"><body><main><h1>Sign in</h1><form method="post">
			<label>Role <select name="role"><option value="admin">admin</option><option value="operator">operator</option></select></label>
			<label>Clinics <input name="clinics"></label><button id="signin">Sign in</button></form></main></body></html>`))
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

// The harness itself against pages made here: the checker passes a page that keeps the rules
// and names each rule a page breaks; sign-in, cookies, viewports and screenshots work.
func TestHarness(t *testing.T) {
	if _, err := Path(); err != nil {
		t.Fatal(err)
	}
	srv := serve(t)
	ctx := New(t, WithTimeout(30*time.Second))

	Open(t, ctx, srv.URL+"/good", "table#t")
	if vs := Check(t, ctx); len(vs) != 0 {
		t.Errorf("good page: %v", vs)
	}
	for _, v := range Axe(t, ctx) {
		if v.Impact == "serious" || v.Impact == "critical" {
			t.Errorf("good page: axe %s (%s): %s %v", v.Rule, v.Impact, v.Help, v.Nodes)
		}
	}

	Open(t, ctx, srv.URL+"/bad", "body")
	var rules []string
	for _, v := range Check(t, ctx) {
		rules = append(rules, v.Rule)
	}
	for _, want := range []string{"html-lang", "one-h1", "landmarks", "img-alt", "svg-alt", "control-label",
		"table-caption", "table-headers", "th-scope", "accessible-name", "duplicate-id"} {
		if !slices.Contains(rules, want) {
			t.Errorf("bad page: rule %s not reported (got %v)", want, rules)
		}
	}
	if n := countOf(rules, "control-label"); n != 3 {
		t.Errorf("bad page: %d unlabelled controls reported, want 3", n)
	}
	if n := countOf(rules, "accessible-name"); n != 3 {
		t.Errorf("bad page: %d unnamed links and buttons reported, want 3", n)
	}
	// axe-core finds the same page's serious and critical faults (injected once per page).
	axeRules := map[string]string{}
	for _, v := range Axe(t, ctx) {
		axeRules[v.Rule] = v.Impact
	}
	for rule, impact := range map[string]string{"html-has-lang": "serious", "image-alt": "critical", "label": "critical", "button-name": "critical"} {
		if axeRules[rule] != impact {
			t.Errorf("bad page: axe rule %s = %q, want %s (got %v)", rule, axeRules[rule], impact, axeRules)
		}
	}
	if n := len(Axe(t, ctx)); n != len(axeRules) {
		t.Errorf("axe run twice on one page: %d then %d violations", len(axeRules), n)
	}

	SignIn(t, ctx, srv.URL, "operator", []string{"c1", "c2"})
	if loc := Location(t, ctx); !strings.HasSuffix(loc, "/good") {
		t.Errorf("after sign-in at %s, want /good", loc)
	}
	if h := CookieHeader(t, ctx, srv.URL); h != "session=operator.c1.c2" {
		t.Errorf("cookie header %q", h)
	}

	Resize(t, ctx, Tablet)
	if w := Eval[int](t, ctx, "window.innerWidth"); w != int(Tablet.Width) {
		t.Errorf("tablet width %d", w)
	}
	path := Screenshot(t, ctx, "good tablet")
	if filepath.Dir(path) != t.ArtifactDir() {
		t.Errorf("screenshot at %s, want in the test's artefact directory %s", path, t.ArtifactDir())
	}
	if b, err := os.ReadFile(path); err != nil || !strings.HasPrefix(string(b), "\x89PNG") {
		t.Errorf("screenshot is not a PNG: %v", err)
	}
}

func countOf(xs []string, x string) int {
	n := 0
	for _, v := range xs {
		if v == x {
			n++
		}
	}
	return n
}
