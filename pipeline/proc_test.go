package pipeline

import (
	"context"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func shProc(t *testing.T, script string, grace time.Duration) *proc {
	t.Helper()
	p, err := startProc(procSpec{name: "sh", path: "/bin/sh", args: []string{"-c", script}, grace: grace})
	require.NoError(t, err)
	t.Cleanup(func() { _ = p.stop() })
	return p
}

func alive(pid int) bool { return syscall.Kill(pid, 0) == nil }

func TestProcStopSIGTERM(t *testing.T) {
	p := shProc(t, `trap 'echo bye; exit 0' TERM; echo ready; while :; do sleep 0.05; done`, 5*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	line, err := p.waitLine(ctx, func(s string) bool { return s == "ready" })
	require.NoError(t, err)
	assert.Equal(t, "ready", line)
	require.NoError(t, p.stop())
	exited, _ := p.exited()
	assert.True(t, exited)
	assert.False(t, alive(p.cmd.Process.Pid))
}

func TestProcStopKillsAfterGrace(t *testing.T) {
	// Ignores SIGTERM, and has a grandchild (sleep) in its process group.
	p := shProc(t, `trap '' TERM; echo up; sleep 30; sleep 30`, 200*time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := p.waitLine(ctx, func(s string) bool { return s == "up" })
	require.NoError(t, err)
	start := time.Now()
	err = p.stop()
	require.Error(t, err, "a SIGKILLed child is not a clean exit")
	assert.Contains(t, err.Error(), "killed")
	assert.Less(t, time.Since(start), 10*time.Second, "stop must not wait for the grandchild's sleep")
	assert.False(t, alive(p.cmd.Process.Pid))
}

func TestProcRun(t *testing.T) {
	tests := []struct {
		name, script string
		wantErr      string
	}{
		{"success", "echo done", ""},
		{"failure shows output", "echo boom >&2; exit 3", "boom"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := shProc(t, tt.script, time.Second)
			err := p.run(context.Background())
			if tt.wantErr == "" {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.wantErr)
			assert.Contains(t, err.Error(), "exit status 3")
		})
	}
}

func TestProcRunCancelled(t *testing.T) {
	p := shProc(t, "sleep 30", time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	err := p.run(ctx)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	exited, _ := p.exited()
	assert.True(t, exited, "cancelling run stops the child")
}

func TestWaitLineChildExits(t *testing.T) {
	p := shProc(t, "echo starting; echo bad config >&2; exit 2", time.Second)
	_, err := p.waitLine(context.Background(), func(s string) bool { return s == "listening" })
	require.Error(t, err)
	assert.Contains(t, err.Error(), "bad config")
}

func TestLineLog(t *testing.T) {
	var echo strings.Builder
	l := newLineLog("x", 3, &echo)
	_, _ = l.Write([]byte("a\nb"))
	_, _ = l.Write([]byte("c\nd\ne\nf"))
	assert.Equal(t, []string{"bc", "d", "e", "f"}, l.snapshot(), "keeps the last 3 lines plus the partial one")
	assert.Equal(t, "[x] a\n[x] bc\n[x] d\n[x] e\n", echo.String())
	line, ok := l.find(func(s string) bool { return s == "a" })
	assert.False(t, ok, "dropped lines are not found")
	assert.Empty(t, line)
	assert.Equal(t, "  [x] e\n  [x] f\n", l.tail(2))
}
