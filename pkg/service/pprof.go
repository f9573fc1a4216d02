package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"time"
)

// pprofListen opens the opt-in profiling listener (PPROF_ADDR). It is never the API's port
// and, without a host ("6060" or ":6060"), binds to 127.0.0.1 only: profiles show code paths
// and goroutine stacks, never meant for the network the API serves. Empty addr: off (nil).
func pprofListen(addr, apiAddr string) (net.Listener, error) {
	if addr == "" {
		return nil, nil
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil { // a bare port
		host, port = "", addr
	}
	if host == "" {
		host = "127.0.0.1"
	}
	addr = net.JoinHostPort(host, port)
	if _, apiPort, err := net.SplitHostPort(apiAddr); err == nil && apiPort == port && port != "0" {
		return nil, fmt.Errorf("PPROF_ADDR %s: the profiler never shares the API's port (HTTP_ADDR %s)", addr, apiAddr)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("PPROF_ADDR: listen %s: %w", addr, err)
	}
	return ln, nil
}

// servePprof serves net/http/pprof's handlers on ln (its own mux: nothing is registered on
// http.DefaultServeMux's routes of the API) until ctx ends.
func servePprof(ctx context.Context, ln net.Listener, log *slog.Logger) error {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	log.Warn("profiling listener on (PPROF_ADDR): for diagnosis only", "addr", ln.Addr().String())
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("pprof: %w", err)
	}
	return nil
}
