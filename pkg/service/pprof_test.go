package service

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
)

func TestPprofListenIsOptInLoopbackAndNeverTheAPIPort(t *testing.T) {
	ln, err := pprofListen("", "127.0.0.1:8081")
	if err != nil || ln != nil {
		t.Fatalf("empty PPROF_ADDR: listener %v, error %v; want none (off)", ln, err)
	}
	api, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer api.Close()
	_, port, _ := net.SplitHostPort(api.Addr().String())
	if _, err := pprofListen(":"+port, api.Addr().String()); err == nil || !strings.Contains(err.Error(), "API's port") {
		t.Fatalf("PPROF_ADDR on the API's port: error %v, want a refusal", err)
	}
	for _, addr := range []string{"0", ":0"} {
		ln, err := pprofListen(addr, api.Addr().String())
		if err != nil {
			t.Fatalf("%q: %v", addr, err)
		}
		if host, _, _ := net.SplitHostPort(ln.Addr().String()); host != "127.0.0.1" {
			t.Errorf("PPROF_ADDR %q bound %s, want 127.0.0.1", addr, ln.Addr())
		}
		_ = ln.Close()
	}
}

func TestServePprofAnswersAndStops(t *testing.T) {
	ln, err := pprofListen("0", "127.0.0.1:8081")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- servePprof(ctx, ln, slog.New(slog.NewTextHandler(io.Discard, nil))) }()
	resp, err := http.Get("http://" + ln.Addr().String() + "/debug/pprof/cmdline")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /debug/pprof/cmdline: %s", resp.Status)
	}
	resp, err = http.Get("http://" + ln.Addr().String() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("the profiler's listener serves /healthz (%s): it must serve only /debug/pprof/", resp.Status)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("servePprof after cancel: %v", err)
	}
}
