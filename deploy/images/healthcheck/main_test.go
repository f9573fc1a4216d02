package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestHealthcheckExitCodes(t *testing.T) {
	ready := true
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/readyz" || !ready {
			http.Error(w, "nats: not connected", http.StatusServiceUnavailable)
			return
		}
		_, _ = io.WriteString(w, "postgres: ok\nnats: ok\n")
	}))
	defer srv.Close()
	var errs strings.Builder
	if code := run([]string{srv.URL + "/readyz"}, "", &errs); code != 0 {
		t.Fatalf("ready service: exit %d (%s)", code, errs.String())
	}
	ready = false
	if code := run([]string{srv.URL + "/readyz"}, "", &errs); code != 1 || !strings.Contains(errs.String(), "503") {
		t.Fatalf("unready service: exit %d, stderr %q", code, errs.String())
	}
	// Default URL from HTTP_ADDR's port.
	_, port, _ := strings.Cut(strings.TrimPrefix(srv.URL, "http://"), ":")
	ready = true
	if code := run(nil, ":"+port, &errs); code != 0 {
		t.Fatalf("HTTP_ADDR :%s: exit %d", port, code)
	}
	if code := run(nil, "", &errs); code != 2 || !strings.Contains(errs.String(), "HTTP_ADDR is not set") {
		t.Fatalf("no URL: exit %d, stderr %q", code, errs.String())
	}
	if code := run([]string{"a", "b"}, "", &errs); code != 2 {
		t.Fatalf("two args: exit %d", code)
	}
}
