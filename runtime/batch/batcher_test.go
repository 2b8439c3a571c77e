package batch

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/veil-ai/veil/oip"
)

// forever keeps timers out of tests that control dispatch by hand.
const forever = time.Hour

func newBatcher(t *testing.T, cfg Config, e Engine) *Batcher {
	t.Helper()
	b, err := New(cfg, e)
	require.NoError(t, err)
	t.Cleanup(b.Close)
	return b
}

func newHeldEngine() *fakeEngine {
	return &fakeEngine{hold: make(chan struct{}), started: make(chan int64, 1000)}
}

// queuedRows is how many rows wait in the batcher's queue.
func (b *Batcher) queuedRows() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	var n int64
	for _, g := range b.pending {
		n += g.rows
	}
	return n
}

// queuedCalls is how many requests wait in the batcher's queue.
func (b *Batcher) queuedCalls() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	for _, g := range b.pending {
		n += len(g.calls)
	}
	return n
}

func waitQueued(t *testing.T, b *Batcher, rows int64) {
	t.Helper()
	require.Eventually(t, func() bool { return b.queuedRows() == rows }, 10*time.Second, time.Millisecond,
		"queue never held %d rows", rows)
}

func waitStarted(t *testing.T, e *fakeEngine, rows int64) {
	t.Helper()
	select {
	case got := <-e.started:
		require.Equal(t, rows, got, "rows of the run that started")
	case <-time.After(10 * time.Second):
		t.Fatalf("no run of %d rows started", rows)
	}
}

// outcome is what one asynchronous Infer returned.
type outcome struct {
	out []oip.Tensor
	err error
}

func goInfer(ctx context.Context, b *Batcher, inputs []oip.Tensor) <-chan outcome {
	ch := make(chan outcome, 1)
	go func() {
		out, err := b.Infer(ctx, inputs)
		ch <- outcome{out, err}
	}()
	return ch
}

func receive(t *testing.T, ch <-chan outcome) outcome {
	t.Helper()
	select {
	case o := <-ch:
		return o
	case <-time.After(10 * time.Second):
		t.Fatal("Infer did not return")
		return outcome{}
	}
}

// rowsFor makes n distinct rows of width values for request id.
func rowsFor(id, n, width int) [][]float32 {
	rows := make([][]float32, n)
	for r := range rows {
		rows[r] = make([]float32, width)
		for c := range rows[r] {
			rows[r][c] = float32(id*1000 + r*10 + c)
		}
	}
	return rows
}

func requireRows(t *testing.T, rows [][]float32, o outcome) {
	t.Helper()
	require.NoError(t, checkRows(rows, o))
}

// checkRows is requireRows for goroutines other than the test's own.
func checkRows(rows [][]float32, o outcome) error {
	if o.err != nil {
		return o.err
	}
	if len(o.out) != 1 {
		return fmt.Errorf("got %d outputs, want 1", len(o.out))
	}
	y := o.out[0]
	wantShape := []int64{int64(len(rows)), 2}
	if y.Name != "y" || y.Datatype != oip.FP32 || !slices.Equal(y.Shape, wantShape) {
		return fmt.Errorf("got output %q %s %v, want \"y\" FP32 %v", y.Name, y.Datatype, y.Shape, wantShape)
	}
	if got, want := floats(y.Raw), wantY(rows); !slices.Equal(got, want) {
		return fmt.Errorf("got values %v, want %v", got, want)
	}
	return nil
}

func runRows(e *fakeEngine) []int64 {
	var rows []int64
	for _, r := range e.recorded() {
		rows = append(rows, r.rows)
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i] < rows[j] })
	return rows
}

func TestJoinedCallersGetTheirOwnRows(t *testing.T) {
	e := newHeldEngine()
	b := newBatcher(t, Config{MaxBatchSize: 1000, MaxBatchTime: forever}, e)
	ctx := context.Background()

	// The first request finds the model idle and runs at once; the rest
	// queue behind it and must be joined into one run when it finishes.
	firstRows := rowsFor(0, 1, 3)
	first := goInfer(ctx, b, fp32Input(firstRows))
	waitStarted(t, e, 1)

	var queued int64
	reqs := make([][][]float32, 20)
	chans := make([]<-chan outcome, len(reqs))
	for i := range reqs {
		reqs[i] = rowsFor(i+1, i%5+1, 3)
		queued += int64(len(reqs[i]))
		chans[i] = goInfer(ctx, b, fp32Input(reqs[i]))
	}
	waitQueued(t, b, queued)
	close(e.hold)

	requireRows(t, firstRows, receive(t, first))
	for i := range reqs {
		requireRows(t, reqs[i], receive(t, chans[i]))
	}
	assert.Equal(t, []int64{1, queued}, runRows(e), "one run alone, then one joined run")
}

func TestConcurrentMixedRequests(t *testing.T) {
	const maxRows = 16
	e := &fakeEngine{}
	b := newBatcher(t, Config{MaxBatchSize: maxRows, MaxBatchTime: 100 * time.Microsecond}, e)
	ctx := context.Background()

	var wg sync.WaitGroup
	for g := range 32 {
		wg.Go(func() {
			for i := range 25 {
				id := g*100 + i
				n := id%6 + 1
				if id%17 == 0 {
					n = maxRows + 4 // larger than a batch: runs alone
				}
				width := 3 + id%2 // two signatures that must never be joined
				rows := rowsFor(id, n, width)
				out, err := b.Infer(ctx, fp32Input(rows))
				assert.NoError(t, checkRows(rows, outcome{out, err}), "request %d", id)
			}
		})
	}
	wg.Wait()
	for _, r := range e.recorded() {
		require.NoError(t, r.err)
		if r.rows != maxRows+4 {
			assert.LessOrEqual(t, r.rows, int64(maxRows), "a joined run exceeded MaxBatchSize")
		}
	}
}

func TestBadRequestDoesNotFailNeighbours(t *testing.T) {
	nan := float32(math.NaN())
	tests := []struct {
		name      string
		bad       []oip.Tensor
		joins     bool // the bad request is structurally fine and joins the batch
		wantErr   error
		fallbacks float64
	}{
		{
			name:      "fails only at run time",
			bad:       fp32Input([][]float32{{1, 2, 3}, {4, nan, 6}}),
			joins:     true,
			wantErr:   errPoison,
			fallbacks: 1,
		},
		{
			name:      "panics the engine",
			bad:       fp32Input([][]float32{{1, 2, 3}, {panicValue, 5, 6}}),
			joins:     true,
			wantErr:   errEnginePanic,
			fallbacks: 1,
		},
		{
			name:    "data does not fit its shape",
			bad:     []oip.Tensor{{Name: "x", Datatype: oip.FP32, Shape: []int64{2, 3}, Raw: make([]byte, 20)}},
			wantErr: oip.ErrShape,
		},
		{
			name:    "inputs disagree on rows",
			bad:     append(fp32Input(rowsFor(9, 2, 3)), oip.Tensor{Name: "z", Datatype: oip.FP32, Shape: []int64{3, 1}, Raw: make([]byte, 12)}),
			wantErr: nil, // the fake engine reads only the first input
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg := prometheus.NewRegistry()
			e := newHeldEngine()
			b := newBatcher(t, Config{MaxBatchSize: 64, MaxBatchTime: forever, Registerer: reg}, e)
			ctx := context.Background()

			first := goInfer(ctx, b, fp32Input(rowsFor(0, 1, 3)))
			waitStarted(t, e, 1)
			var good [][][]float32
			var goodCh []<-chan outcome
			var queued int64
			for i := range 4 {
				rows := rowsFor(i+1, i+1, 3)
				good = append(good, rows)
				goodCh = append(goodCh, goInfer(ctx, b, fp32Input(rows)))
				queued += int64(len(rows))
			}
			badCh := goInfer(ctx, b, tt.bad)
			if tt.joins {
				queued += tt.bad[0].Shape[0]
			} else {
				waitStarted(t, e, tt.bad[0].Shape[0]) // ran alone
			}
			waitQueued(t, b, queued)
			close(e.hold)

			require.NoError(t, receive(t, first).err)
			for i := range good {
				requireRows(t, good[i], receive(t, goodCh[i]))
			}
			badOut := receive(t, badCh)
			if tt.wantErr != nil {
				require.ErrorIs(t, badOut.err, tt.wantErr)
				assert.Nil(t, badOut.out)
			} else {
				require.NoError(t, badOut.err)
			}
			assert.Equal(t, tt.fallbacks, counterValue(t, reg, "veil_batch_fallback_runs_total"))
		})
	}
}

func TestCancelledWhileQueuedLeavesTheBatch(t *testing.T) {
	e := newHeldEngine()
	b := newBatcher(t, Config{MaxBatchSize: 64, MaxBatchTime: forever}, e)

	first := goInfer(context.Background(), b, fp32Input(rowsFor(0, 1, 3)))
	waitStarted(t, e, 1)

	ctx, cancel := context.WithCancel(context.Background())
	leaver := goInfer(ctx, b, fp32Input(rowsFor(1, 2, 3)))
	stayRows := rowsFor(2, 3, 3)
	stayer := goInfer(context.Background(), b, fp32Input(stayRows))
	waitQueued(t, b, 5)

	cancel()
	require.ErrorIs(t, receive(t, leaver).err, context.Canceled)
	waitQueued(t, b, 3)

	close(e.hold)
	require.NoError(t, receive(t, first).err)
	requireRows(t, stayRows, receive(t, stayer))
	assert.Equal(t, []int64{1, 3}, runRows(e), "the cancelled rows never reached the engine")
}

func TestTimedOutWhileQueued(t *testing.T) {
	e := newHeldEngine()
	b := newBatcher(t, Config{MaxBatchSize: 64, MaxBatchTime: forever}, e)
	first := goInfer(context.Background(), b, fp32Input(rowsFor(0, 1, 3)))
	waitStarted(t, e, 1)

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	out, err := b.Infer(ctx, fp32Input(rowsFor(1, 2, 3)))
	require.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Nil(t, out)
	assert.Zero(t, b.queuedRows())

	close(e.hold)
	require.NoError(t, receive(t, first).err)
	assert.Equal(t, []int64{1}, runRows(e))
}

func TestCancelledWhileRunning(t *testing.T) {
	e := newHeldEngine()
	// Filling MaxBatchSize starts a group while the first run is still
	// held, so that the test can cancel members of a running batch.
	b := newBatcher(t, Config{MaxBatchSize: 5, MaxBatchTime: forever}, e)

	first := goInfer(context.Background(), b, fp32Input(rowsFor(0, 1, 3)))
	waitStarted(t, e, 1)

	// One member leaves a running joined batch: it returns at once, its
	// neighbour still gets its rows.
	ctx, cancel := context.WithCancel(context.Background())
	leaver := goInfer(ctx, b, fp32Input(rowsFor(1, 2, 3)))
	stayRows := rowsFor(2, 3, 3)
	stayer := goInfer(context.Background(), b, fp32Input(stayRows))
	waitStarted(t, e, 5)
	cancel()
	require.ErrorIs(t, receive(t, leaver).err, context.Canceled)

	// Every member of a running batch leaves: the run itself is cancelled.
	ctxA, cancelA := context.WithCancel(context.Background())
	ctxB, cancelB := context.WithCancel(context.Background())
	a := goInfer(ctxA, b, fp32Input(rowsFor(3, 2, 3)))
	bb := goInfer(ctxB, b, fp32Input(rowsFor(4, 3, 3)))
	waitStarted(t, e, 5)
	cancelA()
	cancelB()
	require.ErrorIs(t, receive(t, a).err, context.Canceled)
	require.ErrorIs(t, receive(t, bb).err, context.Canceled)
	require.Eventually(t, func() bool {
		e.mu.Lock()
		defer e.mu.Unlock()
		return e.cancelled == 1
	}, 10*time.Second, time.Millisecond, "the abandoned joined run was not cancelled")

	close(e.hold)
	require.NoError(t, receive(t, first).err)
	requireRows(t, stayRows, receive(t, stayer))
}

func TestMaxBatchSize(t *testing.T) {
	e := newHeldEngine()
	b := newBatcher(t, Config{MaxBatchSize: 6, MaxBatchTime: forever}, e)
	ctx := context.Background()

	first := goInfer(ctx, b, fp32Input(rowsFor(0, 1, 3)))
	waitStarted(t, e, 1)

	steps := []struct {
		rows       int
		wantQueued int64
	}{
		{3, 3}, // queued
		{3, 0}, // reaches 6 rows: dispatched
		{3, 3},
		{4, 4}, // 3+4 > 6: the 3 go, the 4 wait
		{2, 0}, // reaches 6 again
		{7, 0}, // more than a batch: runs alone
	}
	var reqs [][][]float32
	var chans []<-chan outcome
	for i, s := range steps {
		rows := rowsFor(i+1, s.rows, 3)
		reqs = append(reqs, rows)
		chans = append(chans, goInfer(ctx, b, fp32Input(rows)))
		waitQueued(t, b, s.wantQueued)
	}
	close(e.hold)
	require.NoError(t, receive(t, first).err)
	for i := range reqs {
		requireRows(t, reqs[i], receive(t, chans[i]))
	}
	assert.Equal(t, []int64{1, 3, 6, 6, 7}, runRows(e))
}

func TestDisabled(t *testing.T) {
	for _, cfg := range []Config{
		{MaxBatchSize: 1, MaxBatchTime: time.Millisecond},
		{MaxBatchSize: 0, MaxBatchTime: time.Millisecond},
		{MaxBatchSize: 64, MaxBatchTime: 0},
	} {
		t.Run(fmt.Sprintf("size=%d,time=%v", cfg.MaxBatchSize, cfg.MaxBatchTime), func(t *testing.T) {
			e := &fakeEngine{}
			b := newBatcher(t, cfg, e)
			var wg sync.WaitGroup
			for i := range 16 {
				wg.Go(func() {
					rows := rowsFor(i, 2, 3)
					out, err := b.Infer(context.Background(), fp32Input(rows))
					assert.NoError(t, checkRows(rows, outcome{out, err}))
				})
			}
			wg.Wait()
			assert.Len(t, e.recorded(), 16, "every request ran on its own")
			for _, r := range e.recorded() {
				assert.Equal(t, int64(2), r.rows)
			}
		})
	}
}

func TestUnsplittableOutputsRunAlone(t *testing.T) {
	e := newHeldEngine()
	e.fixedOutput = true
	reg := prometheus.NewRegistry()
	b := newBatcher(t, Config{MaxBatchSize: 64, MaxBatchTime: forever, Registerer: reg}, e)
	ctx := context.Background()

	first := goInfer(ctx, b, fp32Input(rowsFor(0, 1, 3)))
	waitStarted(t, e, 1)
	r1, r2 := rowsFor(1, 2, 3), rowsFor(2, 3, 3)
	c1, c2 := goInfer(ctx, b, fp32Input(r1)), goInfer(ctx, b, fp32Input(r2))
	waitQueued(t, b, 5)
	close(e.hold)
	require.NoError(t, receive(t, first).err)

	for _, tc := range []struct {
		rows [][]float32
		o    outcome
	}{{r1, receive(t, c1)}, {r2, receive(t, c2)}} {
		require.NoError(t, tc.o.err)
		require.Len(t, tc.o.out, 2)
		requireRows(t, tc.rows, outcome{out: tc.o.out[:1]})
		assert.Equal(t, uint64(len(tc.rows)), binary.LittleEndian.Uint64(tc.o.out[1].Raw), "count is the caller's own rows")
	}
	assert.Equal(t, 1.0, counterValue(t, reg, "veil_batch_fallback_runs_total"))

	// From now on requests run alone, even while another is in flight.
	r3 := rowsFor(3, 4, 3)
	out, err := b.Infer(ctx, fp32Input(r3))
	require.NoError(t, err)
	requireRows(t, r3, outcome{out: out[:1]})
	assert.Equal(t, []int64{1, 2, 3, 4, 5}, runRows(e))
}

func TestBytesInputs(t *testing.T) {
	e := newHeldEngine()
	b := newBatcher(t, Config{MaxBatchSize: 64, MaxBatchTime: forever}, e)
	ctx := context.Background()
	str := func(ss ...string) []oip.Tensor {
		t := oip.Tensor{Name: "s", Datatype: oip.Bytes, Shape: []int64{int64(len(ss))}}
		for _, s := range ss {
			t.Strings = append(t.Strings, []byte(s))
		}
		return []oip.Tensor{t}
	}
	first := goInfer(ctx, b, str("x"))
	waitStarted(t, e, 1)
	a := goInfer(ctx, b, str("ab", "abcd"))
	c := goInfer(ctx, b, str("abc"))
	waitQueued(t, b, 3)
	close(e.hold)
	require.NoError(t, receive(t, first).err)

	lens := func(o outcome) []uint32 {
		require.NoError(t, o.err)
		var v []uint32
		for i := 0; i < len(o.out[0].Raw); i += 4 {
			v = append(v, binary.LittleEndian.Uint32(o.out[0].Raw[i:]))
		}
		return v
	}
	assert.Equal(t, []uint32{2, 4}, lens(receive(t, a)))
	assert.Equal(t, []uint32{3}, lens(receive(t, c)))
	assert.Equal(t, []int64{1, 3}, runRows(e))
}

func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	e := newHeldEngine()
	b := newBatcher(t, Config{MaxBatchSize: 64, MaxBatchTime: forever, Model: "fraud", Registerer: reg}, e)
	ctx := context.Background()

	first := goInfer(ctx, b, fp32Input(rowsFor(0, 1, 3)))
	waitStarted(t, e, 1)
	var chans []<-chan outcome
	for i := range 3 {
		chans = append(chans, goInfer(ctx, b, fp32Input(rowsFor(i+1, 2, 3))))
	}
	waitQueued(t, b, 6)
	close(e.hold)
	require.NoError(t, receive(t, first).err)
	for _, ch := range chans {
		require.NoError(t, receive(t, ch).err)
	}

	rows := histogram(t, reg, "veil_batch_size_rows")
	assert.Equal(t, uint64(2), rows.GetSampleCount(), "two runs")
	assert.Equal(t, 7.0, rows.GetSampleSum(), "1 + 6 rows")
	calls := histogram(t, reg, "veil_batch_size_requests")
	assert.Equal(t, 4.0, calls.GetSampleSum(), "1 + 3 requests")
	wait := histogram(t, reg, "veil_batch_queue_wait_seconds")
	assert.Equal(t, uint64(4), wait.GetSampleCount(), "every queued request")

	_, err := New(Config{MaxBatchSize: 64, MaxBatchTime: time.Millisecond, Model: "fraud", Registerer: reg}, e)
	require.Error(t, err, "a second batcher for the same model must not register silently")
	_, err = New(Config{MaxBatchSize: 64, MaxBatchTime: time.Millisecond, Model: "other", Registerer: reg}, e)
	require.NoError(t, err, "another model registers beside it")
}

func TestClose(t *testing.T) {
	e := newHeldEngine()
	b, err := New(Config{MaxBatchSize: 64, MaxBatchTime: forever}, e)
	require.NoError(t, err)
	first := goInfer(context.Background(), b, fp32Input(rowsFor(0, 1, 3)))
	waitStarted(t, e, 1)
	rows := rowsFor(1, 2, 3)
	queued := goInfer(context.Background(), b, fp32Input(rows))
	waitQueued(t, b, 2)

	closed := make(chan struct{})
	go func() { b.Close(); close(closed) }()
	waitStarted(t, e, 2) // Close dispatched the queue without waiting for idle
	select {
	case <-closed:
		t.Fatal("Close returned while runs were in flight")
	default:
	}
	close(e.hold)
	<-closed
	require.NoError(t, receive(t, first).err)
	requireRows(t, rows, receive(t, queued))

	_, err = b.Infer(context.Background(), fp32Input(rows))
	require.ErrorIs(t, err, ErrClosed)
}

func TestNilEngine(t *testing.T) {
	_, err := New(Config{}, nil)
	require.Error(t, err)
}

func histogram(t *testing.T, reg *prometheus.Registry, name string) *dto.Histogram {
	t.Helper()
	return metric(t, reg, name).GetHistogram()
}

func counterValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	return metric(t, reg, name).GetCounter().GetValue()
}

func metric(t *testing.T, reg *prometheus.Registry, name string) *dto.Metric {
	t.Helper()
	families, err := reg.Gather()
	require.NoError(t, err)
	for _, f := range families {
		if f.GetName() == name {
			require.Len(t, f.GetMetric(), 1)
			return f.GetMetric()[0]
		}
	}
	t.Fatalf("metric %s not registered", name)
	return nil
}
