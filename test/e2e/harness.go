// Package e2e starts Veil's real binaries on loopback for end-to-end tests
// and benchmarks: it finds bin/, picks free ports, captures each process's
// output, waits for readiness and stops everything with SIGTERM.
package e2e

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/veil-ai/veil/internal/freeport"
	"github.com/veil-ai/veil/internal/httpready"
	"github.com/veil-ai/veil/internal/syncbuf"
)

// BinDir is where `make build` put the binaries: $VEIL_BIN_DIR, else the
// repository's bin/ found from this source file.
func BinDir(tb testing.TB) string {
	tb.Helper()
	dir := os.Getenv("VEIL_BIN_DIR")
	if dir == "" {
		dir = filepath.Join(RepoRoot(), "bin")
	}
	if _, err := os.Stat(filepath.Join(dir, "veil-runtime")); err != nil {
		tb.Skipf("binaries not built in %s (run `make build` or `make test`): %v", dir, err)
	}
	return dir
}

// RepoRoot is the repository root, found from this source file's path.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// FreePort returns a loopback TCP port that was free a moment ago.
func FreePort(tb testing.TB) int {
	tb.Helper()
	port, err := freeport.Loopback()
	if err != nil {
		tb.Fatal(err)
	}
	return port
}

// Process is one started binary.
type Process struct {
	Name string
	cmd  *exec.Cmd
	out  *syncbuf.Buffer
	done chan struct{}
	err  error
}

// Start runs bin/<name> with args and env (added to the current
// environment). The process is stopped when the test ends; its output goes
// to the test log if the test failed.
func Start(tb testing.TB, name string, env []string, args ...string) *Process {
	tb.Helper()
	path := filepath.Join(BinDir(tb), name)
	cmd := exec.Command(path, args...)
	cmd.Env = append(os.Environ(), env...)
	out := &syncbuf.Buffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		tb.Fatalf("start %s: %v", name, err)
	}
	p := &Process{Name: name, cmd: cmd, out: out, done: make(chan struct{})}
	go func() { p.err = cmd.Wait(); close(p.done) }()
	tb.Cleanup(func() {
		p.Stop(10 * time.Second)
		if tb.Failed() {
			tb.Logf("---- output of %s %s ----\n%s", name, strings.Join(args, " "), out.String())
		}
	})
	return p
}

// Output is everything the process has printed so far.
func (p *Process) Output() string { return p.out.String() }

// Pid is the process id.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Exited reports whether the process has ended, and its error if so.
func (p *Process) Exited() (bool, error) {
	select {
	case <-p.done:
		return true, p.err
	default:
		return false, nil
	}
}

// Wait blocks until the process exits or ctx ends.
func (p *Process) Wait(ctx context.Context) error {
	select {
	case <-p.done:
		return p.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Stop sends SIGTERM, waits up to grace, then kills. It returns the exit error.
func (p *Process) Stop(grace time.Duration) error {
	select {
	case <-p.done:
		return p.err
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(grace):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
	return p.err
}

// Kill ends the process at once, as a crash would.
func (p *Process) Kill() {
	_ = p.cmd.Process.Kill()
	<-p.done
}

// WaitHTTP polls url until it answers 200, the process exits, or timeout.
func WaitHTTP(tb testing.TB, p *Process, url string, timeout time.Duration) {
	tb.Helper()
	WaitHTTPWith(tb, nil, p, url, timeout)
}

// WaitHTTPWith is WaitHTTP probing with client (e.g. one trusting a test
// CA); nil means a plain client with a one-second timeout.
func WaitHTTPWith(tb testing.TB, client *http.Client, p *Process, url string, timeout time.Duration) {
	tb.Helper()
	if err := PollReady(context.Background(), client, url, timeout, p.exitedBefore(url)); err != nil {
		tb.Fatalf("%v\n---- output ----\n%s", err, p.Output())
	}
}

// PollHTTP is WaitHTTP without a testing.TB, for tools such as the bench.
func PollHTTP(p *Process, url string, timeout time.Duration) error {
	return PollReady(context.Background(), nil, url, timeout, p.exitedBefore(url))
}

// exitedBefore is PollReady's gone check for p; none for a nil p.
func (p *Process) exitedBefore(url string) func() error {
	if p == nil {
		return nil
	}
	return func() error {
		if exited, err := p.Exited(); exited {
			return fmt.Errorf("%s exited before %s was ready: %v", p.Name, url, err)
		}
		return nil
	}
}

// PollReady polls url with client (nil: http.DefaultClient; each probe is
// bounded anyway) until it answers 200, timeout passes or ctx ends. A
// non-nil gone is asked before each probe; its error (the server has
// ended) stops the wait at once, so that servers not started by Start (the
// bench's in-process one) are watched the same way.
func PollReady(ctx context.Context, client *http.Client, url string, timeout time.Duration, gone func() error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	err := httpready.Wait(ctx, client, url, gone)
	var notReady *httpready.NotReadyError
	if errors.As(err, &notReady) {
		return fmt.Errorf("waited up to %v: %w", timeout, err)
	}
	return err
}
