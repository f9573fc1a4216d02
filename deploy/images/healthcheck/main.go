// Command healthcheck is the container health probe of the Trellis images. The images have no
// shell, curl or wget (distroless), so compose's healthcheck runs this static binary instead:
//
//	healthcheck [URL]
//
// It GETs URL (default http://127.0.0.1:$PORT/readyz, PORT from HTTP_ADDR) and exits 0 on a
// 200 answer within 3 seconds, 1 otherwise. Kubernetes does not need it (httpGet probes).
package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"time"
)

func main() {
	os.Exit(run(os.Args[1:], os.Getenv("HTTP_ADDR"), os.Stderr))
}

func run(args []string, httpAddr string, stderr io.Writer) int {
	url, err := target(args, httpAddr)
	if err != nil {
		fmt.Fprintln(stderr, "healthcheck:", err)
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		fmt.Fprintln(stderr, "healthcheck:", err)
		return 2
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		fmt.Fprintln(stderr, "healthcheck:", err)
		return 1
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintf(stderr, "healthcheck: %s: %d %s\n", url, resp.StatusCode, body)
		return 1
	}
	return 0
}

// target is the URL given, or /readyz on the loopback at HTTP_ADDR's port.
func target(args []string, httpAddr string) (string, error) {
	switch {
	case len(args) > 1:
		return "", fmt.Errorf("want at most one argument (a URL), got %d", len(args))
	case len(args) == 1:
		return args[0], nil
	case httpAddr == "":
		return "", fmt.Errorf("no URL given and HTTP_ADDR is not set")
	}
	_, port, err := net.SplitHostPort(httpAddr)
	if err != nil || port == "" {
		return "", fmt.Errorf("HTTP_ADDR %q: want host:port or :port", httpAddr)
	}
	return "http://127.0.0.1:" + port + "/readyz", nil
}
