package batcher

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fakeModel scores a row as the sum of its features, records batch sizes
// and concurrency, and can be made to fail or to block.
type fakeModel struct {
	mu        sync.Mutex
	sizes     []int
	active    atomic.Int32
	maxActive atomic.Int32
	fail      atomic.Pointer[error]
	short     atomic.Bool
	gate      chan struct{} // when non-nil, each call waits for a receive
}

func (m *fakeModel) Infer(ctx context.Context, rows []float32, n, width int) (Output, error) {
	a := m.active.Add(1)
	defer m.active.Add(-1)
	for {
		old := m.maxActive.Load()
		if a <= old || m.maxActive.CompareAndSwap(old, a) {
			break
		}
	}
	if m.gate != nil {
		select {
		case <-m.gate:
		case <-ctx.Done():
			return Output{}, ctx.Err()
		}
	}
	m.mu.Lock()
	m.sizes = append(m.sizes, n)
	m.mu.Unlock()
	if e := m.fail.Load(); e != nil {
		return Output{}, *e
	}
	scores := make([]float32, n)
	for i := range n {
		for _, v := range rows[i*width : (i+1)*width] {
			scores[i] += v
		}
	}
	if m.short.Load() {
		scores = scores[:n-1]
	}
	return Output{Scores: scores, Model: "fraud", Version: "1"}, nil
}

func (m *fakeModel) batchSizes() []int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]int(nil), m.sizes...)
}

func (m *fakeModel) rowsScored() int {
	total := 0
	for _, s := range m.batchSizes() {
		total += s
	}
	return total
}

func testConfig() Config {
	return Config{Width: 2, MaxBatchSize: 4, MaxLatency: 5 * time.Millisecond, MaxConcurrency: 2,
		QueueSize: 64, RequestTimeout: 5 * time.Second, DedupSize: 100}
}

func newTestBatcher(t *testing.T, cfg Config, m *fakeModel) *Batcher {
	t.Helper()
	b, err := New(cfg, m)
	require.NoError(t, err)
	t.Cleanup(func() { _ = b.Close(context.Background()) })
	return b
}

func req(key string, a, c float32) Request {
	return Request{Key: key, TransactionID: "tx-" + key, Features: []float32{a, c}}
}

func inflight(b *Batcher) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.inflight)
}

func scoreOne(b *Batcher, r Request) Outcome {
	out := make([]Outcome, 1)
	b.Score(context.Background(), []Request{r}, out)
	return out[0]
}

func TestScoresMapBackToRows(t *testing.T) {
	for _, n := range []int{1, 3, 4, 9, 50} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			m := &fakeModel{}
			b := newTestBatcher(t, testConfig(), m)
			reqs := make([]Request, n)
			for i := range reqs {
				reqs[i] = req(fmt.Sprint(i), float32(i), 0.5)
			}
			out := make([]Outcome, n)
			b.Score(context.Background(), reqs, out)
			for i, o := range out {
				require.NoError(t, o.Err)
				assert.Equal(t, float32(i)+0.5, o.Score)
				assert.Equal(t, "tx-"+fmt.Sprint(i), o.TransactionID)
				assert.Equal(t, "fraud", o.Model)
				assert.Equal(t, "1", o.Version)
				assert.False(t, o.Duplicate)
			}
			assert.Equal(t, n, m.rowsScored())
			for _, s := range m.batchSizes() {
				assert.LessOrEqual(t, s, 4)
			}
		})
	}
}

func TestFlushAtSizeAndAtLatency(t *testing.T) {
	cfg := testConfig()
	cfg.MaxLatency = time.Hour // only size can flush the first 8
	m := &fakeModel{}
	b := newTestBatcher(t, cfg, m)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() { defer wg.Done(); require.NoError(t, scoreOne(b, req(fmt.Sprint(i), 1, 1)).Err) }()
	}
	wg.Wait()
	assert.Equal(t, []int{4, 4}, m.batchSizes())

	cfg.MaxLatency = 10 * time.Millisecond
	m2 := &fakeModel{}
	b2 := newTestBatcher(t, cfg, m2)
	out := make([]Outcome, 3)
	b2.Score(context.Background(), []Request{req("a", 1, 1), req("b", 1, 1), req("c", 1, 1)}, out)
	assert.Equal(t, []int{3}, m2.batchSizes(), "a partial batch is sent when the latency budget ends")
}

func TestRedeliveryIsNotScoredTwice(t *testing.T) {
	m := &fakeModel{}
	b := newTestBatcher(t, testConfig(), m)
	first := scoreOne(b, req("src\x00id-1", 2, 3))
	require.NoError(t, first.Err)
	again := scoreOne(b, req("src\x00id-1", 2, 3))
	require.NoError(t, again.Err)
	assert.True(t, again.Duplicate)
	assert.Equal(t, first.Scored, again.Scored)
	assert.Equal(t, 1, m.rowsScored())
	assert.Equal(t, 1, b.CacheLen())

	// The same key twice in one submission, and concurrently in flight.
	out := make([]Outcome, 2)
	b.Score(context.Background(), []Request{req("k2", 1, 1), req("k2", 1, 1)}, out)
	require.NoError(t, out[0].Err)
	require.NoError(t, out[1].Err)
	assert.True(t, out[1].Duplicate)
	assert.Equal(t, out[0].Score, out[1].Score)
	assert.Equal(t, 2, m.rowsScored())
}

func TestFailuresAreNotCachedAndRetryWorks(t *testing.T) {
	tests := []struct {
		name    string
		breakIt func(*fakeModel, *Config)
		wantErr string
	}{
		{"model error", func(m *fakeModel, _ *Config) {
			e := errors.New("runtime unavailable")
			m.fail.Store(&e)
		}, "runtime unavailable"},
		{"wrong score count", func(m *fakeModel, _ *Config) { m.short.Store(true) }, "returned 0 scores for 1 rows"},
		{"publisher error", func(_ *fakeModel, c *Config) {
			var calls atomic.Int32
			c.Publisher = func(context.Context, []Scored) error {
				if calls.Add(1) == 1 {
					return errors.New("sink down")
				}
				return nil
			}
		}, "sink down"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := &fakeModel{}
			cfg := testConfig()
			tc.breakIt(m, &cfg)
			b := newTestBatcher(t, cfg, m)
			o := scoreOne(b, req("k", 1, 1))
			require.Error(t, o.Err)
			assert.Contains(t, o.Err.Error(), tc.wantErr)
			assert.Equal(t, 0, b.CacheLen())

			m.fail.Store(nil)
			m.short.Store(false)
			o = scoreOne(b, req("k", 1, 1))
			require.NoError(t, o.Err)
			assert.False(t, o.Duplicate, "a failed row is scored again on redelivery")
			assert.Equal(t, float32(2), o.Score)
		})
	}
}

func TestQueueFullAndBoundedConcurrency(t *testing.T) {
	cfg := testConfig()
	cfg.MaxBatchSize, cfg.QueueSize, cfg.MaxConcurrency = 1, 2, 1
	cfg.MaxLatency = 0
	m := &fakeModel{gate: make(chan struct{})}
	b := newTestBatcher(t, cfg, m)
	// One row runs (blocked on the gate), one waits for a concurrency slot
	// in the collector, two fill the queue; the next is refused.
	results := make(chan Outcome, 4)
	for i := range 4 {
		go func() { results <- scoreOne(b, req(fmt.Sprint(i), 1, 1)) }()
		require.Eventually(t, func() bool { return inflight(b) == i+1 }, 5*time.Second, time.Millisecond)
	}
	require.Eventually(t, func() bool { return b.QueueLen() == 2 }, 5*time.Second, time.Millisecond)
	o := scoreOne(b, req("overflow", 1, 1))
	assert.ErrorIs(t, o.Err, ErrQueueFull)
	for range 4 {
		m.gate <- struct{}{}
	}
	for range 4 {
		require.NoError(t, (<-results).Err)
	}
	assert.Equal(t, int32(1), m.maxActive.Load())
}

func TestCloseFlushesOpenBatchAndRefusesNew(t *testing.T) {
	cfg := testConfig()
	cfg.MaxLatency = time.Hour
	m := &fakeModel{}
	b, err := New(cfg, m)
	require.NoError(t, err)
	done := make(chan Outcome)
	go func() { done <- scoreOne(b, req("open", 1, 2)) }()
	require.Eventually(t, func() bool { return inflight(b) > 0 }, 5*time.Second, time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, b.Close(ctx))
	o := <-done
	require.NoError(t, o.Err)
	assert.Equal(t, float32(3), o.Score)
	assert.ErrorIs(t, scoreOne(b, req("late", 1, 1)).Err, ErrClosed)
}

func TestDrainSendsWithoutWaiting(t *testing.T) {
	cfg := testConfig()
	cfg.MaxLatency = time.Hour
	m := &fakeModel{}
	b := newTestBatcher(t, cfg, m)
	b.Drain()
	o := scoreOne(b, req("x", 1, 1))
	require.NoError(t, o.Err)
	assert.Equal(t, []int{1}, m.batchSizes())
}

func TestWaiterContextAndRequestDeadline(t *testing.T) {
	cfg := testConfig()
	cfg.RequestTimeout = 20 * time.Millisecond
	m := &fakeModel{gate: make(chan struct{})} // never opened: the deadline ends the call
	b := newTestBatcher(t, cfg, m)
	o := scoreOne(b, req("slow", 1, 1))
	require.Error(t, o.Err)
	assert.ErrorIs(t, o.Err, context.DeadlineExceeded)

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	out := make([]Outcome, 1)
	b.Score(ctx, []Request{req("gone", 1, 1)}, out)
	assert.ErrorIs(t, out[0].Err, context.Canceled)
}

func TestWrongWidth(t *testing.T) {
	b := newTestBatcher(t, testConfig(), &fakeModel{})
	o := scoreOne(b, Request{Key: "k", Features: []float32{1, 2, 3}})
	assert.ErrorContains(t, o.Err, "row has 3 features, model takes 2")
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		mod  func(*Config)
		want string
	}{
		{"ok", func(*Config) {}, ""},
		{"width", func(c *Config) { c.Width = 0 }, "width"},
		{"batch", func(c *Config) { c.MaxBatchSize = 0 }, "max batch size"},
		{"latency", func(c *Config) { c.MaxLatency = -1 }, "max latency"},
		{"concurrency", func(c *Config) { c.MaxConcurrency = 0 }, "max concurrency"},
		{"queue", func(c *Config) { c.QueueSize = 1 }, "queue size"},
		{"timeout", func(c *Config) { c.RequestTimeout = 0 }, "request timeout"},
		{"dedup", func(c *Config) { c.DedupSize = -1 }, "dedup size"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := testConfig()
			tc.mod(&c)
			err := c.Validate()
			if tc.want == "" {
				assert.NoError(t, err)
			} else {
				assert.ErrorContains(t, err, tc.want)
			}
		})
	}
}

func TestDedupCacheBounds(t *testing.T) {
	now := time.Unix(0, 0)
	clock := func() time.Time { return now }
	c := newDedupCache(2, time.Minute, clock)
	c.put("a", Scored{Score: 1})
	c.put("b", Scored{Score: 2})
	c.put("c", Scored{Score: 3})
	_, okA := c.get("a")
	assert.False(t, okA, "oldest entry evicted at capacity")
	s, okC := c.get("c")
	assert.True(t, okC)
	assert.Equal(t, float32(3), s.Score)
	assert.Equal(t, 2, c.len())
	now = now.Add(2 * time.Minute)
	_, okB := c.get("b")
	assert.False(t, okB, "entries expire after the window")
	assert.Equal(t, 1, c.len())

	off := newDedupCache(0, 0, clock)
	off.put("x", Scored{})
	_, ok := off.get("x")
	assert.False(t, ok, "size 0 disables the cache")
}
