package bench

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"connectrpc.com/connect"

	billingv1 "github.com/trellis-health/trellis/proto/gen/trellis/billing/v1"
	"github.com/trellis-health/trellis/proto/gen/trellis/billing/v1/billingv1connect"
)

// DashboardPaths are the KPI pages timed (HTML pages and their JSON).
var DashboardPaths = []string{"/overview", "/api/overview.json", "/billing", "/api/billing.json", "/health"}

// WorkQueues are billing's work queues timed.
var WorkQueues = []string{"denial", "underpayment", "unmatched", "holds"}

// TimeDashboard requests each page n times in a row (after one warm-up) with the session
// cookie carrying token.
func TimeDashboard(ctx context.Context, hc *http.Client, baseURL, cookieName, token string, n int) []Endpoint {
	var out []Endpoint
	for _, p := range DashboardPaths {
		e := Endpoint{Group: "dashboard", Name: "GET " + p}
		var ds []time.Duration
		for i := range n + 1 {
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, baseURL+p, nil)
			req.AddCookie(&http.Cookie{Name: cookieName, Value: token})
			t0 := time.Now()
			resp, err := hc.Do(req)
			if err == nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				_ = resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					err = fmt.Errorf("status %d", resp.StatusCode)
				}
			}
			el := time.Since(t0)
			if err != nil {
				e.Errors++
				continue
			}
			if i > 0 {
				ds = append(ds, el)
			}
		}
		e.Latency = Summarize(ds)
		out = append(out, e)
	}
	return out
}

// TimeWorkQueues lists each of billing's work queues n times in a row (after one warm-up).
func TimeWorkQueues(ctx context.Context, hc *http.Client, baseURL, token string, n int) []Endpoint {
	c := billingv1connect.NewRemittanceServiceClient(hc, baseURL, connect.WithInterceptors(Bearer(token)))
	var out []Endpoint
	for _, q := range WorkQueues {
		e := Endpoint{Group: "billing", Name: "ListWorkItems " + q}
		var ds []time.Duration
		for i := range n + 1 {
			t0 := time.Now()
			_, err := c.ListWorkItems(ctx, connect.NewRequest(&billingv1.ListWorkItemsRequest{Queue: q}))
			el := time.Since(t0)
			if err != nil {
				e.Errors++
				continue
			}
			if i > 0 {
				ds = append(ds, el)
			}
		}
		e.Latency = Summarize(ds)
		out = append(out, e)
	}
	return out
}

// HarnessProcess names the harness's own process in PeakRSS (not a service).
const HarnessProcess = "harness (embedded NATS)"

// Services lists the service processes running from binDir as this process's children, by
// executable name.
func Services(binDir string) map[string]int {
	out := map[string]int{}
	self := strconv.Itoa(os.Getpid())
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid := e.Name()
		if _, err := strconv.Atoi(pid); err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", pid, "stat"))
		if err != nil {
			continue
		}
		s := string(stat)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(f) < 2 || f[1] != self {
			continue
		}
		exe, err := os.Readlink(filepath.Join("/proc", pid, "exe"))
		if err != nil || filepath.Dir(exe) != binDir {
			continue
		}
		out[filepath.Base(exe)], _ = strconv.Atoi(pid)
	}
	return out
}

// PeakRSS returns the peak resident set (VmHWM, in MB) of the service processes (Services)
// by name, and of this process itself as HarnessProcess.
func PeakRSS(binDir string) map[string]float64 {
	out := map[string]float64{}
	if v, ok := vmHWM(strconv.Itoa(os.Getpid())); ok {
		out[HarnessProcess] = v
	}
	for name, pid := range Services(binDir) {
		if v, ok := vmHWM(strconv.Itoa(pid)); ok {
			out[name] = v
		}
	}
	return out
}

// CPUSeconds returns the CPU time (user + system) used so far by each service process
// (Services) and by this process (HarnessProcess: the load generator and the embedded NATS
// server), in seconds. Clock ticks are taken as 100 a second (Linux's USER_HZ).
func CPUSeconds(binDir string) map[string]float64 {
	out := map[string]float64{}
	if v, ok := cpuOf(strconv.Itoa(os.Getpid())); ok {
		out[HarnessProcess] = v
	}
	for name, pid := range Services(binDir) {
		if v, ok := cpuOf(strconv.Itoa(pid)); ok {
			out[name] = v
		}
	}
	// Postgres's processes (every database's: other work on the machine counts too) and the
	// whole machine, for scale.
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		if comm, err := os.ReadFile(filepath.Join("/proc", e.Name(), "comm")); err == nil && strings.TrimSpace(string(comm)) == "postgres" {
			if v, ok := cpuOf(e.Name()); ok {
				out[PostgresProcesses] += v
			}
		}
	}
	if b, err := os.ReadFile("/proc/stat"); err == nil {
		line, _, _ := strings.Cut(string(b), "\n")
		f := strings.Fields(line)
		var busy float64
		for i, v := range f[1:] {
			n, _ := strconv.ParseFloat(v, 64)
			if i != 3 && i != 4 && i < 8 { // not idle, not iowait; guest time is already in user
				busy += n
			}
		}
		out[WholeMachine] = busy / 100
	}
	return out
}

// Rows of CPUSeconds that are not services.
const (
	PostgresProcesses = "postgres (every database on the server)"
	WholeMachine      = "whole machine (every process)"
)

func cpuOf(pid string) (float64, bool) {
	b, err := os.ReadFile(filepath.Join("/proc", pid, "stat"))
	if err != nil {
		return 0, false
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	// After the comm: state(0) ppid(1) ... utime(11) stime(12).
	if len(f) < 13 {
		return 0, false
	}
	u, err1 := strconv.ParseFloat(f[11], 64)
	st, err2 := strconv.ParseFloat(f[12], 64)
	if err1 != nil || err2 != nil {
		return 0, false
	}
	return (u + st) / 100, true
}

func vmHWM(pid string) (float64, bool) {
	b, err := os.ReadFile(filepath.Join("/proc", pid, "status"))
	if err != nil {
		return 0, false
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			f := strings.Fields(rest)
			if len(f) >= 1 {
				kb, err := strconv.ParseFloat(f[0], 64)
				if err == nil {
					return kb / 1024, true
				}
			}
		}
	}
	return 0, false
}
