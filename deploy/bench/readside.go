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
