package pipeline

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// procSpec says how to start one child binary.
type procSpec struct {
	name  string   // short name for logs and errors, e.g. "veil-runtime"
	path  string   // executable
	args  []string // arguments, without the executable
	env   []string // added to the parent's environment
	echo  io.Writer
	grace time.Duration // SIGTERM → SIGKILL
}

// proc is a started child. Its combined output is kept (bounded) so that a
// failed start can be explained and the runtime's cold-start line parsed.
type proc struct {
	spec procSpec
	cmd  *exec.Cmd
	out  *lineLog
	done chan struct{}
	err  error // set before done is closed
}

// startProc starts a child in its own process group, so that a terminal's
// Ctrl-C reaches only veil, which then stops the children in order.
func startProc(spec procSpec) (*proc, error) {
	if spec.grace <= 0 {
		spec.grace = 10 * time.Second
	}
	cmd := exec.Command(spec.path, spec.args...)
	cmd.Env = append(os.Environ(), spec.env...)
	out := newLineLog(spec.name, 400, spec.echo)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = childAttrs()
	// Bound the wait for the output pipes should a grandchild keep them open.
	cmd.WaitDelay = spec.grace
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s (%s): %w", spec.name, spec.path, err)
	}
	p := &proc{spec: spec, cmd: cmd, out: out, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	slog.Debug("started child", "name", spec.name, "pid", cmd.Process.Pid)
	return p, nil
}

// exited reports whether the child has ended, and how.
func (p *proc) exited() (bool, error) {
	select {
	case <-p.done:
		return true, p.err
	default:
		return false, nil
	}
}

// run waits for a short-lived child (seal, upload) to finish. Cancelling ctx
// stops it the same way as stop.
func (p *proc) run(ctx context.Context) error {
	select {
	case <-p.done:
	case <-ctx.Done():
		p.stop()
		return fmt.Errorf("%s: %w", p.spec.name, ctx.Err())
	}
	if p.err != nil {
		return fmt.Errorf("%s failed: %w\n%s", p.spec.name, p.err, p.out.tail(20))
	}
	return nil
}

// stop sends SIGTERM, waits for the grace period, then SIGKILLs the whole
// process group. It always waits for the child, so nothing is left running.
// The returned error is nil for a clean exit or one caused by our SIGTERM.
func (p *proc) stop() error {
	select {
	case <-p.done:
		return p.exitErr()
	default:
	}
	signalGroup(p.cmd.Process.Pid, syscall.SIGTERM)
	timer := time.NewTimer(p.spec.grace)
	defer timer.Stop()
	select {
	case <-p.done:
	case <-timer.C:
		slog.Warn("child did not stop in time; killing it", "name", p.spec.name, "grace", p.spec.grace)
		signalGroup(p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
	}
	return p.exitErr()
}

// exitErr hides the "signal: terminated" that our own SIGTERM causes.
func (p *proc) exitErr() error {
	if p.err == nil {
		return nil
	}
	var ee *exec.ExitError
	if errors.As(p.err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGTERM {
			return nil
		}
	}
	return fmt.Errorf("%s: %w", p.spec.name, p.err)
}

// lineLog keeps the last max lines a child printed, optionally echoing them
// (prefixed with the child's name) for --verbose.
type lineLog struct {
	mu      sync.Mutex
	name    string
	max     int
	lines   []string
	partial strings.Builder
	echo    io.Writer
	changed chan struct{} // closed and replaced on every new line
}

func newLineLog(name string, max int, echo io.Writer) *lineLog {
	return &lineLog{name: name, max: max, echo: echo, changed: make(chan struct{})}
}

func (l *lineLog) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	rest := b
	for len(rest) > 0 {
		i := bytes.IndexByte(rest, '\n')
		if i < 0 {
			l.partial.Write(rest)
			break
		}
		l.partial.Write(rest[:i])
		l.addLocked(l.partial.String())
		l.partial.Reset()
		rest = rest[i+1:]
	}
	return len(b), nil
}

func (l *lineLog) addLocked(line string) {
	if l.echo != nil {
		fmt.Fprintf(l.echo, "[%s] %s\n", l.name, line)
	}
	l.lines = append(l.lines, line)
	if len(l.lines) > l.max {
		l.lines = append(l.lines[:0], l.lines[len(l.lines)-l.max:]...)
	}
	close(l.changed)
	l.changed = make(chan struct{})
}

// find returns the last kept line that match accepts.
func (l *lineLog) find(match func(string) bool) (string, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i := len(l.lines) - 1; i >= 0; i-- {
		if match(l.lines[i]) {
			return l.lines[i], true
		}
	}
	return "", false
}

// waitLine blocks until the child prints a line that match accepts, the
// child exits, or ctx ends.
func (p *proc) waitLine(ctx context.Context, match func(string) bool) (string, error) {
	for {
		p.out.mu.Lock()
		ch := p.out.changed
		p.out.mu.Unlock()
		if line, ok := p.out.find(match); ok {
			return line, nil
		}
		select {
		case <-ch:
		case <-p.done:
			if line, ok := p.out.find(match); ok {
				return line, nil
			}
			return "", fmt.Errorf("%s exited (%v) before it was ready:\n%s", p.spec.name, p.err, p.out.tail(20))
		case <-ctx.Done():
			return "", fmt.Errorf("waiting for %s: %w", p.spec.name, ctx.Err())
		}
	}
}

// snapshot returns the kept lines, oldest first.
func (l *lineLog) snapshot() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]string, len(l.lines), len(l.lines)+1)
	copy(out, l.lines)
	if l.partial.Len() > 0 {
		out = append(out, l.partial.String())
	}
	return out
}

// tail formats the last n lines for an error message.
func (l *lineLog) tail(n int) string {
	lines := l.snapshot()
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	var b strings.Builder
	for _, s := range lines {
		fmt.Fprintf(&b, "  [%s] %s\n", l.name, s)
	}
	return b.String()
}
