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

// ArtifactDir is where screenshots of the test go: $TRELLIS_ARTIFACTS/<test name> when set
// (kept after the run), else a directory of the test's own that is removed when it ends.
func ArtifactDir(t testing.TB) string {
	t.Helper()
	root := os.Getenv("TRELLIS_ARTIFACTS")
	if root == "" {
		return t.TempDir()
	}
	dir := filepath.Join(root, safeName(t.Name()))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
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

// Accessibility runs Check and fails the test, listing the violations, when there are any.
func Accessibility(t testing.TB, ctx context.Context) []Violation {
	t.Helper()
	vs := Check(t, ctx)
	if len(vs) > 0 {
		lines := make([]string, len(vs))
		for i, v := range vs {
			lines[i] = "  " + v.String()
		}
		t.Errorf("accessibility of %s: %d violations:\n%s", Location(t, ctx), len(vs), strings.Join(lines, "\n"))
	}
	return vs
}
