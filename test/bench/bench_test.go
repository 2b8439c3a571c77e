package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestWriteReportKeepsProse(t *testing.T) {
	path := filepath.Join(t.TempDir(), "performance.md")
	require.NoError(t, os.WriteFile(path, []byte("# Title\n\nintro\n"), 0o644))

	require.NoError(t, writeReport(path, "table one\n"))
	got, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, "# Title\n\nintro\n"+beginMarker+"\ntable one\n"+endMarker+"\n", string(got), "appended when no markers")

	// Prose after the block survives a rerun; the block is replaced.
	require.NoError(t, os.WriteFile(path, append(got, []byte("\n## After\n")...), 0o644))
	require.NoError(t, writeReport(path, "table two\n"))
	got, err = os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, "# Title\n\nintro\n"+beginMarker+"\ntable two\n"+endMarker+"\n\n## After\n", string(got))

	require.NoError(t, os.WriteFile(path, []byte(beginMarker+"\nno end"), 0o644))
	require.Error(t, writeReport(path, "x\n"), "an unterminated block is not overwritten")
}

func TestPercentile(t *testing.T) {
	var d []time.Duration
	for i := 1; i <= 100; i++ {
		d = append(d, time.Duration(i))
	}
	assert.Equal(t, time.Duration(50), percentile(d, 0.50))
	assert.Equal(t, time.Duration(99), percentile(d, 0.99))
	assert.Equal(t, time.Duration(7), percentile([]time.Duration{7}, 0.99))
}

func TestMeasureCountsRowsAndStopsOnError(t *testing.T) {
	var calls atomic.Int64
	res, err := measure(context.Background(), 3, 10, 10*time.Millisecond, 50*time.Millisecond, func(int) (op, error) {
		return func(context.Context) error { calls.Add(1); time.Sleep(time.Millisecond); return nil }, nil
	}, nil)
	require.NoError(t, err)
	assert.Positive(t, res.requests)
	assert.LessOrEqual(t, int64(res.requests), calls.Load(), "warm-up requests are not counted")
	assert.InDelta(t, float64(res.requests*10)/res.window.Seconds(), res.rows, 1e-6, "rows/s is requests × rows per request over the window")
	assert.LessOrEqual(t, res.p50, res.p99)
	assert.Zero(t, res.rowsPerCore(), "no CPU meter, no per-core figure")

	boom := errors.New("boom")
	_, err = measure(context.Background(), 2, 1, 0, time.Second, func(int) (op, error) {
		return func(context.Context) error { return boom }, nil
	}, nil)
	require.ErrorIs(t, err, boom)
}

func TestRowsPerCore(t *testing.T) {
	r := result{rows: 1000, window: 2 * time.Second, cpu: 500 * time.Millisecond}
	assert.InDelta(t, 4000.0, r.rowsPerCore(), 1e-9, "2000 rows in 0.5 CPU-seconds")
}

func TestCapacityModel(t *testing.T) {
	c := capacityModel{targets: []float64{10_000, 65_000}, utilization: 0.5, podVCPUs: 4, minPods: 2}
	tests := []struct {
		perCore   float64
		target    float64
		wantVCPUs int
		wantPods  int
	}{
		{perCore: 1000, target: 10_000, wantVCPUs: 20, wantPods: 5},
		{perCore: 1000, target: 65_000, wantVCPUs: 130, wantPods: 33},
		{perCore: 1e6, target: 65_000, wantVCPUs: 1, wantPods: 2},
	}
	for _, tt := range tests {
		v := c.vcpus(tt.perCore, tt.target)
		assert.Equal(t, tt.wantVCPUs, v)
		assert.Equal(t, tt.wantPods, c.pods(v))
	}
	table := c.render([]row{
		{scenario: "gRPC raw", batch: 256, res: result{rows: 1000, window: time.Second, cpu: time.Second}},
		{scenario: "gRPC raw", batch: 64, res: result{rows: 1000, window: time.Second, cpu: time.Second}},
	}, 256)
	assert.Contains(t, table, "| gRPC raw | 256 | 1.0 k | 20 (5) | 130 (33) |")
	assert.NotContains(t, table, "| gRPC raw | 64 |", "only the sizing batch is modelled")
}

func TestTargets(t *testing.T) {
	b := &bench{cfg: config{loadProtocol: protoRESTJSON, loadClients: 64}, raw: map[int]float64{1: 1000, 256: 100_000}}
	ms := func(n int) time.Duration { return time.Duration(n) * time.Millisecond }
	b.rows = []row{
		{scenario: scenarioRaw, batch: 1, res: result{rows: 1000, p50: ms(1)}, ratio: 1},
		{scenario: scenarioFloor, batch: 1, res: result{rows: 500, p50: ms(2)}},
		{scenario: "REST JSON", batch: 1, res: result{p50: ms(4)}},
		{scenario: "REST JSON", batch: 256, res: result{rows: 60_000}, ratio: 0.6},
		{scenario: "gRPC raw", batch: 256, res: result{rows: 70_000}, ratio: 0.7},
		{scenario: loadScenario("rest-json", 64, false), batch: 1, res: result{rows: 100}},
		{scenario: loadScenario("rest-json", 64, true), batch: 1, res: result{rows: 300}},
	}
	got := map[string]targetCheck{}
	for _, c := range b.checkTargets() {
		got[strings.SplitN(c.name, ",", 2)[0]] = c
	}
	assert.True(t, got["REST JSON"].met, "0.6 ≥ 0.5")
	assert.False(t, got["gRPC raw"].met, "0.7 < 0.8")
	assert.False(t, got["REST binary"].known, "not measured")
	lat := got["Single-row REST JSON p50 ≤ 1.5 × (bare net/http p50 + raw onnxruntime batch-1 p50)"]
	assert.True(t, lat.known)
	assert.True(t, lat.met, "4 ms ≤ 1.5 × (2 + 1) ms")
	batching := got["Batching on ≥ 3 × concurrent single-row rows/s with batching off"]
	assert.True(t, batching.met, "300 = 3 × 100")
}

func TestProcCPUReadsThisProcess(t *testing.T) {
	self, err := procCPU(os.Getpid())()
	require.NoError(t, err)
	rusage, err := selfCPU()
	require.NoError(t, err)
	// Both count this process's CPU time; /proc rounds to clock ticks.
	assert.InDelta(t, rusage.Seconds(), self.Seconds(), 0.05)
}
