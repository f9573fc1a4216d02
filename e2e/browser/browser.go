// Package browser drives a headless Chromium from end-to-end tests with chromedp: one browser
// per call of New (so cookies never leak between users), sign-in through a service's dev
// /signin page, screenshots kept as test artefacts, and an accessibility check run in the page.
//
// Chromium comes from Debian's `chromium` package (`make chromium`, scripts/ensure-chromium.sh);
// the binary is $CHROMIUM, else `chromium` or `chromium-browser` on PATH.
package browser

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

// Viewport is a window size the pages are checked at.
type Viewport struct {
	Name          string // used in screenshot file names
	Width, Height int64
	Portrait      bool
}

var (
	// Laptop is the default: a common laptop screen.
	Laptop = Viewport{Name: "laptop", Width: 1366, Height: 768}
	// Tablet is a large tablet held upright.
	Tablet = Viewport{Name: "tablet", Width: 1024, Height: 1366, Portrait: true}
	// TabletNarrow is a common tablet held upright, 820 px wide (iPad Air).
	TabletNarrow = Viewport{Name: "tablet-820", Width: 820, Height: 1180, Portrait: true}
)

type config struct {
	timeout  time.Duration
	viewport Viewport
}

// Option changes what New starts.
type Option func(*config)

// WithTimeout bounds everything the returned context does (default 60 s).
func WithTimeout(d time.Duration) Option { return func(c *config) { c.timeout = d } }

// WithViewport starts at v instead of Laptop.
func WithViewport(v Viewport) Option { return func(c *config) { c.viewport = v } }

// Path returns the Chromium binary the tests use, or an error that says how to install it.
func Path() (string, error) {
	if p := os.Getenv("CHROMIUM"); p != "" {
		return exec.LookPath(p)
	}
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
	}
	return "", errors.New("no Chromium: run `make chromium` (scripts/ensure-chromium.sh), or set CHROMIUM to its path")
}

// New starts a headless Chromium for the test and returns a context for one tab in it, bounded
// by the timeout. The browser is stopped when the test ends; its output is logged only when the
// test fails.
func New(t testing.TB, opts ...Option) context.Context {
	t.Helper()
	c := config{timeout: 60 * time.Second, viewport: Laptop}
	for _, o := range opts {
		o(&c)
	}
	bin, err := Path()
	if err != nil {
		t.Fatal(err)
	}
	out := &syncBuffer{}
	aopts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(bin),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(int(c.viewport.Width), int(c.viewport.Height)),
		chromedp.Flag("lang", "en-US"),
		chromedp.CombinedOutput(out),
	)
	if os.Geteuid() == 0 {
		// Chromium refuses to start its sandbox as root (CI and dev containers run as root).
		aopts = append(aopts, chromedp.NoSandbox)
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), aopts...)
	bctx, cancelBrowser := chromedp.NewContext(actx)
	t.Cleanup(func() {
		cancelBrowser()
		cancelAlloc()
		if t.Failed() {
			if o := quiet(out.String()); o != "" {
				t.Logf("chromium output:\n%s", o)
			}
		}
	})
	// The first Run starts the browser; it must not carry the timeout, which would stop it.
	start := time.Now()
	if err := chromedp.Do(bctx, setViewport(c.viewport)); err != nil {
		t.Fatalf("start chromium (%s): %v\n%s", bin, err, quiet(out.String()))
	}
	t.Logf("chromium started in %v", time.Since(start).Round(time.Millisecond))
	ctx, cancel := context.WithTimeout(bctx, c.timeout)
	t.Cleanup(cancel)
	return ctx
}

// quiet drops the noise headless Chromium prints in a container without a desktop session.
func quiet(out string) string {
	var keep []string
	for _, l := range strings.Split(out, "\n") {
		if strings.TrimSpace(l) == "" || strings.Contains(l, "dbus/") || strings.Contains(l, "unexpected operator") {
			continue
		}
		keep = append(keep, l)
	}
	return strings.Join(keep, "\n")
}

func setViewport(v Viewport) chromedp.Action[chromedp.Void] {
	orient := chromedp.EmulateLandscape
	if v.Portrait {
		orient = chromedp.EmulatePortrait
	}
	return chromedp.EmulateViewport(v.Width, v.Height, orient)
}

// Resize switches the tab to the viewport v.
func Resize(t testing.TB, ctx context.Context, v Viewport) {
	t.Helper()
	if err := chromedp.Do(ctx, setViewport(v)); err != nil {
		t.Fatalf("viewport %s: %v", v.Name, err)
	}
}

// ArtifactDir is where screenshots of the test go: the test's artefact directory (Go's
// t.ArtifactDir()): kept under -outputdir (default: the package's directory) in
// _artifacts/<test>/ when the test runs with `go test -artifacts`, else a temporary directory
// removed when the test ends.
func ArtifactDir(t testing.TB) string {
	t.Helper()
	return t.ArtifactDir()
}

var unsafeChars = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

func safeName(s string) string { return strings.Trim(unsafeChars.ReplaceAllString(s, "_"), "_") }

// Screenshot saves the whole page (beyond the viewport) as <name>.png in the test's artefact
// directory and returns the file's path.
func Screenshot(t testing.TB, ctx context.Context, name string) string {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	path := filepath.Join(ArtifactDir(t), safeName(name)+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot %s", path)
	return path
}

// Open navigates to url and waits until the element sel (CSS) is in the page.
func Open(t testing.TB, ctx context.Context, url, sel string) {
	t.Helper()
	if err := chromedp.Do(ctx, chromedp.Navigate(url), chromedp.WaitReady(chromedp.CSS(sel))); err != nil {
		loc, _ := chromedp.Run(ctx, chromedp.Location())
		t.Fatalf("open %s and wait for %s (now at %s): %v", url, sel, loc, err)
	}
}

// Navigate opens url and returns the HTTP status of the page's response.
func Navigate(t testing.TB, ctx context.Context, url string) int {
	t.Helper()
	resp, err := chromedp.Run(ctx, chromedp.NavigateResponse(url))
	if err != nil {
		t.Fatalf("open %s: %v", url, err)
	}
	if resp == nil {
		t.Fatalf("open %s: no response", url)
	}
	return int(resp.Status)
}

// Location is the URL of the page the tab shows.
func Location(t testing.TB, ctx context.Context) string {
	t.Helper()
	loc, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

// Eval evaluates a JavaScript expression in the page and decodes its (JSON) value into T.
// Promises are awaited.
func Eval[T any](t testing.TB, ctx context.Context, expr string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("evaluate %.80q: %v", expr, err)
	}
	return v
}

// SignIn signs in through the dev sign-in page at baseURL+"/signin": it picks role in the
// form's role select, types clinics (comma separated) in its clinics field, presses #signin,
// and waits until the browser has left the sign-in page.
func SignIn(t testing.TB, ctx context.Context, baseURL, role string, clinics []string) {
	t.Helper()
	Open(t, ctx, strings.TrimRight(baseURL, "/")+"/signin", "#signin")
	fill := fmt.Sprintf(`(() => {
		const form = document.querySelector('#signin').form;
		if (!form) return 'the #signin button is in no form';
		const role = form.querySelector('select[name="role"]') || form.querySelector('select');
		if (!role) return 'no role select';
		if (![...role.options].some(o => o.value === %[1]q)) return 'no role option ' + %[1]q;
		role.value = %[1]q;
		const clinics = form.querySelector('[name="clinics"]') || form.querySelector('input[type="text"], input:not([type])');
		if (!clinics) return 'no clinics field';
		clinics.value = %[2]q;
		return '';
	})()`, role, strings.Join(clinics, ","))
	if msg := Eval[string](t, ctx, fill); msg != "" {
		t.Fatalf("sign-in form: %s", msg)
	}
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS("#signin"))); err != nil {
		t.Fatalf("press #signin: %v", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		loc := Location(t, ctx)
		if !strings.Contains(loc, "/signin") && Eval[string](t, ctx, "document.readyState") == "complete" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("still at %s 10 s after signing in as %s for %v", loc, role, clinics)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Cookies are the browser's cookies for url, HttpOnly ones included.
func Cookies(t testing.TB, ctx context.Context, url string) []*network.Cookie {
	t.Helper()
	res, err := chromedp.Run(ctx, chromedp.Action[network.GetCookiesResult](
		func(ctx context.Context, tg *chromedp.Target) (network.GetCookiesResult, error) {
			return cdp.Call(ctx, tg, network.GetCookies, network.GetCookiesParams{URLs: []string{url}})
		}))
	if err != nil {
		t.Fatalf("cookies: %v", err)
	}
	return res.Cookies
}

// CookieHeader is a Cookie request header with the browser's cookies for url, so a test can
// call the same service as the signed-in user from Go.
func CookieHeader(t testing.TB, ctx context.Context, url string) string {
	t.Helper()
	var parts []string
	for _, c := range Cookies(t, ctx, url) {
		parts = append(parts, c.Name+"="+c.Value)
	}
	return strings.Join(parts, "; ")
}

// syncBuffer collects the browser's output, which its process writes from other goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) Len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Len()
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

//go:embed a11y.js
var a11yScript string

// Violation is one accessibility rule a page breaks.
type Violation struct {
	Rule    string `json:"rule"`
	Element string `json:"element"` // a short selector-like description; empty for page-wide rules
	Message string `json:"message"`
}

func (v Violation) String() string {
	if v.Element == "" {
		return v.Rule + ": " + v.Message
	}
	return v.Rule + ": " + v.Element + ": " + v.Message
}

// Check runs the accessibility rules (a11y.js) on the page the tab shows and returns what it
// breaks: html lang; exactly one h1; header, nav and main landmarks; a text alternative for
// every img and svg (or alt="" / aria-hidden when decorative); a label for every form control;
// tables with a caption and th cells with scope; an accessible name for every link and
// button; no duplicate ids.
func Check(t testing.TB, ctx context.Context) []Violation {
	t.Helper()
	return Eval[[]Violation](t, ctx, a11yScript)
}

// Accessibility runs Check (our structural rules) and axe-core (AxeCheck: WCAG 2.x A and AA
// rules and axe's best practices, serious and critical violations) on the page, and fails the
// test, listing the violations, when there are any.
func Accessibility(t testing.TB, ctx context.Context) []Violation {
	t.Helper()
	vs := Check(t, ctx)
	for _, v := range Axe(t, ctx) {
		if v.Impact == "serious" || v.Impact == "critical" {
			vs = append(vs, Violation{Rule: "axe:" + v.Rule, Element: strings.Join(v.Nodes, ", "), Message: v.Impact + ": " + v.Help})
		} else {
			t.Logf("accessibility of %s: axe %s (%s, not failing): %s %v", Location(t, ctx), v.Rule, v.Impact, v.Help, v.Nodes)
		}
	}
	if len(vs) > 0 {
		lines := make([]string, len(vs))
		for i, v := range vs {
			lines[i] = "  " + v.String()
		}
		t.Errorf("accessibility of %s: %d violations:\n%s", Location(t, ctx), len(vs), strings.Join(lines, "\n"))
	}
	return vs
}

// AxeViolation is a rule of axe-core the page breaks, with the elements (CSS selectors) that do.
type AxeViolation struct {
	Rule   string   `json:"rule"`
	Impact string   `json:"impact"` // minor, moderate, serious or critical
	Help   string   `json:"help"`
	Nodes  []string `json:"nodes"`
}

// AxePath is axe-core's axe.min.js: $TRELLIS_AXE when set, else the copy scripts/ensure-axe.sh
// installs in e2e/browser/axe/node_modules (git-ignored; `make chromium` runs the script).
func AxePath() (string, error) {
	if p := os.Getenv("TRELLIS_AXE"); p != "" {
		return p, nil
	}
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return "", errors.New("axe-core: cannot locate e2e/browser; set TRELLIS_AXE to axe.min.js")
	}
	p := filepath.Join(filepath.Dir(file), "axe", "node_modules", "axe-core", "axe.min.js")
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("axe-core is not installed (%s): run `make chromium` or scripts/ensure-axe.sh, or set TRELLIS_AXE", p)
	}
	return p, nil
}

var axeSource = sync.OnceValues(func() (string, error) {
	p, err := AxePath()
	if err != nil {
		return "", err
	}
	b, err := os.ReadFile(p)
	return string(b), err
})

// axeRun runs axe on the whole document: the WCAG 2.0, 2.1 and 2.2 A and AA rules and axe's
// best practices, violations only.
const axeRun = `axe.run(document, {
	runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa', 'best-practice']},
	resultTypes: ['violations']
}).then(r => r.violations.map(v => ({rule: v.id, impact: v.impact || '', help: v.help,
	nodes: v.nodes.map(n => [].concat(n.target).join(' '))})))`

// Axe injects axe-core into the page the tab shows (unless it is there already) and returns
// every violation, whatever its impact.
func Axe(t testing.TB, ctx context.Context) []AxeViolation {
	t.Helper()
	src, err := axeSource()
	if err != nil {
		t.Fatal(err)
	}
	if !Eval[bool](t, ctx, "typeof window.axe === 'object'") {
		if _, err := chromedp.Run(ctx, chromedp.Evaluate[chromedp.Void](src+"\n;undefined")); err != nil {
			t.Fatalf("inject axe-core: %v", err)
		}
	}
	return Eval[[]AxeViolation](t, ctx, axeRun)
}

// Click clicks the element sel (CSS) with the mouse.
func Click(t testing.TB, ctx context.Context, sel string) {
	t.Helper()
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(sel))); err != nil {
		t.Fatalf("click %s: %v", sel, err)
	}
}

// Press moves the keyboard focus to sel (CSS) and presses Enter, as a keyboard user does.
func Press(t testing.TB, ctx context.Context, sel string) {
	t.Helper()
	if err := chromedp.Do(ctx, chromedp.Focus(chromedp.CSS(sel)), chromedp.KeyEvent("\r")); err != nil {
		t.Fatalf("press Enter on %s: %v", sel, err)
	}
}

// Type types text into the field sel (CSS), after what it holds.
func Type(t testing.TB, ctx context.Context, sel, text string) {
	t.Helper()
	if err := chromedp.Do(ctx, chromedp.SendKeys(chromedp.CSS(sel), text)); err != nil {
		t.Fatalf("type into %s: %v", sel, err)
	}
}

// UploadFile chooses the file at path in the file input sel (CSS).
func UploadFile(t testing.TB, ctx context.Context, sel, path string) {
	t.Helper()
	if err := chromedp.Do(ctx, chromedp.SetUploadFiles(chromedp.CSS(sel), []string{path})); err != nil {
		t.Fatalf("choose %s in %s: %v", path, sel, err)
	}
}

// WaitLocation waits (up to 10 s) until the tab's URL contains part and its page has loaded,
// after a click or a key that navigates.
func WaitLocation(t testing.TB, ctx context.Context, part string) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		loc := Location(t, ctx)
		if strings.Contains(loc, part) && Eval[string](t, ctx, "document.readyState") == "complete" {
			return loc
		}
		if time.Now().After(deadline) {
			t.Fatalf("still at %s 10 s later, waiting for a URL with %q", loc, part)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Tab presses the Tab key and returns a description of the element that has the focus then
// ("a.skip", "input#q", ...).
func Tab(t testing.TB, ctx context.Context) string {
	t.Helper()
	if err := chromedp.Do(ctx, chromedp.KeyEvent("\t")); err != nil {
		t.Fatalf("press Tab: %v", err)
	}
	return Eval[string](t, ctx, `(() => { const e = document.activeElement; if (!e) return '';
		return e.tagName.toLowerCase() + (e.id ? '#' + e.id : '') + (e.className ? '.' + String(e.className).split(/\s+/).join('.') : ''); })()`)
}

// WaitNavigated waits (up to 10 s) until the tab has left the URL from and loaded the next page,
// after a click or a key that navigates, and returns the new URL.
func WaitNavigated(t testing.TB, ctx context.Context, from string) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		loc := Location(t, ctx)
		if loc != from && Eval[string](t, ctx, "document.readyState") == "complete" {
			return loc
		}
		if time.Now().After(deadline) {
			t.Fatalf("still at %s 10 s later", loc)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
