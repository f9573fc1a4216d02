package auth

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/emptypb"
)

func TestLimiterTokenBucketPerKey(t *testing.T) {
	clock := &fakeClock{}
	l := NewLimiter(6, 3).withClock(clock.now) // 3 at once, then one every 10 s
	for i := range 3 {
		if ok, _ := l.Allow("a"); !ok {
			t.Fatalf("request %d of the burst refused", i+1)
		}
	}
	ok, wait := l.Allow("a")
	if ok || wait < 9*time.Second || wait > 10*time.Second {
		t.Fatalf("4th request: allowed %v, wait %s; want refused, about 10 s", ok, wait)
	}
	if ok, _ := l.Allow("b"); !ok {
		t.Fatal("another key shares the first key's bucket")
	}
	clock.advance(10 * time.Second)
	if ok, _ := l.Allow("a"); !ok {
		t.Fatal("refilled token refused")
	}
	if ok, _ := l.Allow("a"); ok {
		t.Fatal("only one token refills in 10 s")
	}
	// Idle keys are forgotten once full again; a forgotten key starts with a full burst.
	clock.advance(2 * time.Minute)
	l.Allow("c")
	if n := len(l.buckets); n != 1 {
		t.Fatalf("%d buckets kept after every other key refilled, want 1", n)
	}
	off := NewLimiter(0, 0)
	for range 100 {
		if ok, _ := off.Allow("a"); !ok {
			t.Fatal("a limiter with rate 0 refused a request")
		}
	}
	var none *Limiter
	if ok, _ := none.Allow("a"); !ok {
		t.Fatal("a nil limiter refused a request")
	}
}

func TestLimiterMiddleware(t *testing.T) {
	l := NewLimiter(1, 2)
	served := 0
	h := l.Middleware(ClientIP, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { served++ }))
	post := func(addr string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(http.MethodPost, "/signin", strings.NewReader("role=admin"))
		r.RemoteAddr = addr
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	for range 2 {
		if w := post("192.0.2.1:1234"); w.Code != http.StatusOK {
			t.Fatalf("within the burst: %d", w.Code)
		}
	}
	w := post("192.0.2.1:5678") // same client, another port
	if w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") != "60" || served != 2 {
		t.Fatalf("over the limit: %d, Retry-After %q, served %d; want 429, 60, 2", w.Code, w.Header().Get("Retry-After"), served)
	}
	if w := post("192.0.2.2:1234"); w.Code != http.StatusOK {
		t.Fatalf("another client: %d", w.Code)
	}
}

func TestLimiterUnaryInterceptor(t *testing.T) {
	l := NewLimiter(1, 1)
	asSubject := func(sub string) connect.UnaryInterceptorFunc {
		return func(next connect.UnaryFunc) connect.UnaryFunc {
			return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
				if s := req.Header().Get("X-Sub"); s != "" {
					ctx = WithPrincipal(ctx, &Principal{Subject: s})
				}
				return next(ctx, req)
			}
		}
	}
	mux := http.NewServeMux()
	handler := func(_ context.Context, _ *connect.Request[emptypb.Empty]) (*connect.Response[emptypb.Empty], error) {
		return connect.NewResponse(&emptypb.Empty{}), nil
	}
	opts := connect.WithInterceptors(asSubject(""), l.UnaryInterceptor("/t.S/Upload"))
	mux.Handle("/t.S/Upload", connect.NewUnaryHandler("/t.S/Upload", handler, opts))
	mux.Handle("/t.S/List", connect.NewUnaryHandler("/t.S/List", handler, opts))
	srv := httptest.NewServer(mux)
	defer srv.Close()
	call := func(proc, sub string) error {
		c := connect.NewClient[emptypb.Empty, emptypb.Empty](srv.Client(), srv.URL+proc)
		req := connect.NewRequest(&emptypb.Empty{})
		req.Header().Set("X-Sub", sub)
		_, err := c.CallUnary(context.Background(), req)
		return err
	}
	if err := call("/t.S/Upload", "alice"); err != nil {
		t.Fatal(err)
	}
	err := call("/t.S/Upload", "alice")
	if connect.CodeOf(err) != connect.CodeResourceExhausted {
		t.Fatalf("second upload: %v, want resource_exhausted", err)
	}
	var ce *connect.Error
	if !errors.As(err, &ce) || ce.Meta().Get("Retry-After") != "60" {
		t.Fatalf("Retry-After = %q, want 60", ce.Meta().Get("Retry-After"))
	}
	if err := call("/t.S/Upload", "bob"); err != nil {
		t.Fatalf("another subject: %v", err)
	}
	if err := call("/t.S/List", "alice"); err != nil {
		t.Fatalf("a procedure not limited: %v", err)
	}
	// Over HTTP, the Connect protocol answers 429 with Retry-After.
	r, _ := http.NewRequest(http.MethodPost, srv.URL+"/t.S/Upload", strings.NewReader("{}"))
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("X-Sub", "alice")
	resp, err := srv.Client().Do(r)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("HTTP %d, Retry-After %q; want 429 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
}
