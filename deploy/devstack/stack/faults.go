package stack

import (
	"context"
	"fmt"
	"os/exec"
	"syscall"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
)

// Faults for the reliability suite (e2e/faults_test.go): kill a service with SIGKILL and start
// it again, run more replicas of a service, restart the embedded NATS server.

// svcProc is a running service process and how to start it again.
type svcProc struct {
	bin    string
	env    []string
	cmd    *exec.Cmd
	exited chan struct{}
}

// Kill sends SIGKILL to the named service (no graceful shutdown: in-flight transactions roll
// back, unacknowledged messages are redelivered) and waits for it to exit.
func (s *Stack) Kill(name string) error {
	p, ok := s.svcs[name]
	if !ok {
		return fmt.Errorf("stack: no running service %q", name)
	}
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		return fmt.Errorf("stack: kill %s: %w", name, err)
	}
	select {
	case <-p.exited:
		return nil
	case <-time.After(10 * time.Second):
		return fmt.Errorf("stack: %s did not exit after SIGKILL", name)
	}
}

// Restart starts the named service again with the same binary and environment, and returns
// how long it took to report ready.
func (s *Stack) Restart(ctx context.Context, name string) (time.Duration, error) {
	p, ok := s.svcs[name]
	if !ok {
		return 0, fmt.Errorf("stack: no service %q", name)
	}
	select {
	case <-p.exited:
	default:
		return 0, fmt.Errorf("stack: %s is still running", name)
	}
	start := time.Now()
	if err := s.start(name, p.bin, p.env, "serve"); err != nil {
		return 0, err
	}
	if err := waitHTTP(ctx, s.URL(name)+"/readyz", 60*time.Second); err != nil {
		return 0, fmt.Errorf("%s did not become ready after a restart: %w", name, err)
	}
	return time.Since(start), nil
}

// WaitReady waits until every running service process, replicas included, answers /readyz
// (after a fault every one of them shared, such as a Postgres restart).
func (s *Stack) WaitReady(ctx context.Context, timeout time.Duration) error {
	for name, p := range s.svcs {
		select {
		case <-p.exited:
			continue // killed and not restarted
		default:
		}
		if err := waitHTTP(ctx, s.URL(name)+"/readyz", timeout); err != nil {
			return fmt.Errorf("%s not ready: %w", name, err)
		}
	}
	return nil
}

// StartReplica runs one more process of the named service against the same database and NATS
// (another HTTP port) and returns its name (e.g. "billing-2", which Kill and Restart take) and
// base URL once it is ready. It stops with the stack.
func (s *Stack) StartReplica(ctx context.Context, name string) (string, string, error) {
	p, ok := s.svcs[name]
	if !ok {
		return "", "", fmt.Errorf("stack: no service %q", name)
	}
	port, err := freePort()
	if err != nil {
		return "", "", err
	}
	n := 2
	for s.svcs[fmt.Sprintf("%s-%d", name, n)] != nil {
		n++
	}
	replica := fmt.Sprintf("%s-%d", name, n)
	s.Ports[replica] = port
	env := append(append([]string{}, p.env...), fmt.Sprintf("HTTP_ADDR=127.0.0.1:%d", port))
	if err := s.start(replica, p.bin, env, "serve"); err != nil {
		return "", "", err
	}
	if err := waitHTTP(ctx, s.URL(replica)+"/readyz", 60*time.Second); err != nil {
		return "", "", fmt.Errorf("replica of %s did not become ready: %w", name, err)
	}
	return replica, s.URL(replica), nil
}

// RestartNATS shuts the embedded NATS server down and starts it again on the same port,
// users and storage (JetStream file storage survives); clients reconnect on their own. It returns how
// long NATS was down.
func (s *Stack) RestartNATS() (time.Duration, error) {
	if s.nats == nil {
		return 0, fmt.Errorf("stack: NATS is not embedded (NATSURL was given)")
	}
	start := time.Now()
	s.nats.Shutdown()
	s.nats.WaitForShutdown()
	ns, err := natsserver.NewServer(s.natsOpts()) // the same users and permissions
	if err != nil {
		return 0, fmt.Errorf("embedded nats: %w", err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(20 * time.Second) {
		return 0, fmt.Errorf("embedded nats did not restart on port %d", s.Ports["nats"])
	}
	s.nats = ns
	return time.Since(start), nil
}
