package pipeline

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func testRun(t *testing.T) *run {
	t.Helper()
	cfg := DefaultConfig()
	cfg.StartTimeout, cfg.StopGrace, cfg.Stdout = 5*time.Second, time.Second, io.Discard
	r := &run{cfg: cfg, out: io.Discard, http: &http.Client{Timeout: time.Second}, result: &Result{}, tmp: t.TempDir()}
	t.Cleanup(func() { _ = r.cleanup() })
	return r
}

func TestStartListeningRetriesLostPortRace(t *testing.T) {
	ready := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {}))
	defer ready.Close()
	closed := "http://" + loopback(mustFreePort(t)) + "/ready"

	tests := []struct {
		name         string
		fixed        bool
		scripts      []string
		wantLaunches int
		wantErr      string
	}{
		{"ready at once", false, []string{"sleep 30"}, 1, ""},
		{"port taken, then ready", false,
			[]string{"echo 'listen tcp 127.0.0.1:1: bind: address already in use' >&2; exit 1", "sleep 30"}, 2, ""},
		{"fixed ports are not retried", true,
			[]string{"echo 'bind: address already in use' >&2; exit 1", "sleep 30"}, 1, "address already in use"},
		{"other failures are not retried", false,
			[]string{"echo 'bad model' >&2; exit 1", "sleep 30"}, 1, "bad model"},
		{"gives up after bindAttempts", false,
			[]string{"echo 'address already in use'; exit 1", "echo 'address already in use'; exit 1", "echo 'address already in use'; exit 1", "sleep 30"},
			bindAttempts, "address already in use"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := testRun(t)
			launches := 0
			p, err := r.startListening(context.Background(), "test server", tt.fixed, func() (*proc, string, error) {
				script := tt.scripts[launches]
				launches++
				url := closed
				if script == "sleep 30" {
					url = ready.URL
				}
				p, err := r.startChild("sh", "/bin/sh", nil, "-c", script)
				return p, url, err
			})
			assert.Equal(t, tt.wantLaunches, launches)
			if tt.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tt.wantErr)
				return
			}
			require.NoError(t, err)
			exited, _ := p.exited()
			assert.False(t, exited)
		})
	}
}

func TestCleanupStopsChildrenAndRemovesTempDir(t *testing.T) {
	r := testRun(t)
	require.NoError(t, os.WriteFile(filepath.Join(r.tmp, "model.key"), []byte("k"), 0o600))
	a, err := r.startChild("a", "/bin/sh", nil, "-c", "sleep 30")
	require.NoError(t, err)
	b, err := r.startChild("b", "/bin/sh", nil, "-c", "echo $TMPDIR; sleep 30")
	require.NoError(t, err)
	line, err := b.waitLine(context.Background(), func(string) bool { return true })
	require.NoError(t, err)
	assert.Equal(t, r.tmp, line, "children's TMPDIR is the private temp dir")

	require.NoError(t, r.cleanup())
	for _, p := range []*proc{a, b} {
		exited, _ := p.exited()
		assert.True(t, exited, p.spec.name)
	}
	_, err = os.Stat(r.tmp)
	assert.True(t, os.IsNotExist(err), "temp dir removed")
}

func mustFreePort(t *testing.T) int {
	t.Helper()
	p, err := portOrFree(0)
	require.NoError(t, err)
	return p
}

func TestColdStartFromRuntimeMetrics(t *testing.T) {
	const page = `# TYPE veil_coldstart_last_phase_seconds gauge
veil_coldstart_last_phase_seconds{phase="total"} 0.05
veil_coldstart_last_phase_seconds{phase="attest"} 0.003
veil_coldstart_last_phase_seconds{phase="evidence"} 0.0001
veil_coldstart_last_phase_seconds{phase="session"} 0.04
`
	tests := []struct {
		name    string
		page    string
		want    []Phase
		wantErr string
	}{
		{"phases in cold-start order", page,
			[]Phase{{"evidence", 0.0001}, {"attest", 0.003}, {"session", 0.04}, {"total", 0.05}}, ""},
		{"no cold-start metric", "# TYPE up gauge\nup 1\n", nil, "veil_coldstart_last_phase_seconds"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				assert.Equal(t, "/metrics", r.URL.Path)
				_, _ = io.WriteString(w, tt.page)
			}))
			defer srv.Close()
			r := testRun(t)
			got, err := r.coldStart(context.Background(), runtimeEndpoints{httpURL: srv.URL})
			if tt.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tt.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
			assert.Equal(t, "evidence 100µs, attest 3ms, session 40ms, total 50ms", formatPhases(got))
		})
	}
}
