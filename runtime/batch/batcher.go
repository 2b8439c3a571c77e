package batch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/veil-ai/veil/oip"
)

// Engine runs one model: all its outputs for the given inputs. The runtime's
// onnxruntime model satisfies it, and so does a Batcher.
type Engine interface {
	Infer(ctx context.Context, inputs []oip.Tensor) ([]oip.Tensor, error)
}

// Defaults for the runtime's --max_batch_size and --max_batch_time flags
// (measured on the shipped fraud model; see docs/performance.md).
//
// 64 rows: a run costs a fixed ~12 µs plus ~0.2–0.3 µs per row, so by a few
// dozen rows the fixed part is amortized and joining more only lengthens
// the wait of the first member. Callers that already send larger batches
// (the on-prem functions do) run alone and are not slowed.
//
// 1 ms: the longest a request waits for company while runs are in flight;
// many times a batch-64 run (~40 µs) and about three single-row REST round
// trips, so a queued request never waits much longer than it would for a
// free core. An idle model does not wait at all, so low-load latency is
// unaffected.
const (
	DefaultMaxBatchSize = 64
	DefaultMaxBatchTime = time.Millisecond
)

// ErrClosed is returned by Infer after Close.
var ErrClosed = errors.New("batcher closed")

// Config is a Batcher's configuration. MaxBatchSize ≤ 1 or MaxBatchTime ≤ 0
// turns batching off (MLServer's convention): every request then goes
// straight to the engine.
type Config struct {
	// MaxBatchSize is the most rows one joined run may hold.
	MaxBatchSize int
	// MaxBatchTime is the longest a queued request waits for its batch to
	// fill while the engine is busy.
	MaxBatchTime time.Duration
	// Model labels the metrics and logs.
	Model string
	// Registerer receives the metrics; nil keeps them unregistered.
	Registerer prometheus.Registerer
	// Logger receives warnings about failed joined runs; nil discards them.
	Logger *slog.Logger
}

func (c Config) enabled() bool { return c.MaxBatchSize > 1 && c.MaxBatchTime > 0 }

// Batcher joins concurrent requests for one model into single engine runs.
// It is an Engine itself and is safe for concurrent use.
type Batcher struct {
	cfg     Config
	engine  Engine
	log     *slog.Logger
	metrics *metrics
	pool    bufferPool

	mu       sync.Mutex
	pending  map[string]*group // queued groups by signature
	inFlight int               // engine runs started and not yet finished
	closed   bool
	// unsplittable is set once a joined run's outputs could not be split:
	// from then on every request runs alone.
	unsplittable bool
	runs         sync.WaitGroup
}

// call is one Infer waiting for its result.
type call struct {
	ctx    context.Context
	inputs []oip.Tensor
	rows   int64
	queued time.Time
	done   chan result // buffered: a sender never blocks on a caller that left
	group  *group      // set while queued; guarded by Batcher.mu
}

type result struct {
	outputs []oip.Tensor
	err     error
}

// group is the queue of compatible calls not yet dispatched.
type group struct {
	key   string
	calls []*call
	rows  int64
	timer *time.Timer
}

// New wraps engine in a Batcher. It fails only if the metrics cannot be
// registered (for example twice for the same model).
func New(cfg Config, engine Engine) (*Batcher, error) {
	if engine == nil {
		return nil, errors.New("batch: nil engine")
	}
	m, err := newMetrics(cfg.Model, cfg.Registerer)
	if err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Batcher{
		cfg:     cfg,
		engine:  engine,
		log:     log.With("component", "batch", "model", cfg.Model),
		metrics: m,
		pending: make(map[string]*group),
	}, nil
}

// Infer runs inputs, joined with concurrent compatible requests when
// batching is on, and returns this request's rows of every output.
func (b *Batcher) Infer(ctx context.Context, inputs []oip.Tensor) ([]oip.Tensor, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("batch: before queueing: %w", err)
	}
	rows, key, joinable := signature(inputs)
	if !b.cfg.enabled() {
		b.observeRun(rows, 1)
		return b.engine.Infer(ctx, inputs)
	}
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil, ErrClosed
	}
	if !joinable || rows > int64(b.cfg.MaxBatchSize) || b.unsplittable {
		b.startLocked()
		b.mu.Unlock()
		return b.runStarted(ctx, inputs, rows)
	}
	if b.inFlight == 0 {
		// An idle model takes the request at once, on the caller's own
		// goroutine: no queue, no hand-off, no wake-up of another thread.
		b.startLocked()
		b.mu.Unlock()
		b.metrics.queueWait.Observe(0)
		return b.runStarted(ctx, inputs, rows)
	}
	c := &call{ctx: ctx, inputs: inputs, rows: rows, queued: time.Now(), done: make(chan result, 1)}
	b.enqueueLocked(c, key)
	b.mu.Unlock()

	select {
	case r := <-c.done:
		return r.outputs, r.err
	case <-ctx.Done():
		b.mu.Lock()
		if c.group != nil {
			b.removeLocked(c)
		}
		b.mu.Unlock()
		// If the batch already ran, its rows for this caller are dropped
		// with the buffered channel.
		return nil, fmt.Errorf("batch: waiting for inference: %w", ctx.Err())
	}
}

// Close stops accepting requests, dispatches everything still queued and
// waits for the runs in flight.
func (b *Batcher) Close() {
	b.mu.Lock()
	b.closed = true
	b.flushLocked()
	b.mu.Unlock()
	b.runs.Wait()
}

// startLocked counts a run that is about to start outside the queue, so
// that queued requests know the engine is busy and Close waits for it.
func (b *Batcher) startLocked() {
	b.inFlight++
	b.runs.Add(1)
}

// runStarted runs one request by itself with its own context.
func (b *Batcher) runStarted(ctx context.Context, inputs []oip.Tensor, rows int64) ([]oip.Tensor, error) {
	defer b.runs.Done()
	defer b.finish()
	b.observeRun(rows, 1)
	return b.engine.Infer(ctx, inputs)
}

// observeRun records one engine run; requests that could not be read as
// rows (rows 0) are not counted as a batch size.
func (b *Batcher) observeRun(rows int64, calls int) {
	if rows > 0 {
		b.metrics.rows.Observe(float64(rows))
		b.metrics.calls.Observe(float64(calls))
	}
}

func (b *Batcher) enqueueLocked(c *call, key string) {
	maxRows := int64(b.cfg.MaxBatchSize)
	g := b.pending[key]
	if g != nil && g.rows+c.rows > maxRows {
		b.dispatchLocked(g)
		g = nil
	}
	if g == nil {
		g = &group{key: key}
		b.pending[key] = g
	}
	g.calls = append(g.calls, c)
	g.rows += c.rows
	c.group = g
	switch {
	case g.rows >= maxRows:
		b.dispatchLocked(g)
	case g.timer == nil:
		g.timer = time.AfterFunc(b.cfg.MaxBatchTime, func() { b.expire(g) })
	}
}

// removeLocked takes a call that gave up out of its queued group.
func (b *Batcher) removeLocked(c *call) {
	g := c.group
	c.group = nil
	for i, m := range g.calls {
		if m == c {
			g.calls = append(g.calls[:i], g.calls[i+1:]...)
			break
		}
	}
	g.rows -= c.rows
	if len(g.calls) == 0 {
		if g.timer != nil {
			g.timer.Stop()
		}
		if b.pending[g.key] == g {
			delete(b.pending, g.key)
		}
	}
}

func (b *Batcher) expire(g *group) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.pending[g.key] == g {
		b.dispatchLocked(g)
	}
}

func (b *Batcher) flushLocked() {
	for _, g := range b.pending {
		b.dispatchLocked(g)
	}
}

// dispatchLocked hands a queued group to a new run.
func (b *Batcher) dispatchLocked(g *group) {
	delete(b.pending, g.key)
	if g.timer != nil {
		g.timer.Stop()
	}
	now := time.Now()
	for _, c := range g.calls {
		c.group = nil
		b.metrics.queueWait.Observe(now.Sub(c.queued).Seconds())
	}
	b.startLocked()
	go func() {
		defer b.runs.Done()
		defer b.finish()
		b.execute(g.calls)
	}()
}

// finish ends one run; an engine that goes idle takes the whole queue at
// once rather than letting it wait out its timers.
func (b *Batcher) finish() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.inFlight--
	if b.inFlight == 0 {
		b.flushLocked()
	}
}

// execute runs a dispatched group and delivers every member its result.
func (b *Batcher) execute(calls []*call) {
	live := make([]*call, 0, len(calls))
	var total int64
	for _, c := range calls {
		if c.ctx.Err() == nil {
			live = append(live, c)
			total += c.rows
		}
	}
	switch len(live) {
	case 0:
		return
	case 1:
		b.observeRun(total, 1)
		b.runEach(live)
		return
	}
	b.observeRun(total, len(live))

	joined, release := join(&b.pool, live, total)
	ctx, cancel := leaveTogether(live)
	outputs, err := b.safeInfer(ctx, joined)
	abandoned := ctx.Err() != nil
	cancel()
	release()
	var parts [][]oip.Tensor
	if err == nil {
		parts, err = split(outputs, live, total)
	}
	if err != nil {
		if abandoned {
			return // every member has left; nobody to answer
		}
		b.metrics.fallbacks.Inc()
		if errors.Is(err, errUnsplittable) {
			b.mu.Lock()
			b.unsplittable = true
			b.mu.Unlock()
			b.log.Warn("model outputs cannot be split by rows; batching disabled for this model", "error", err)
		} else {
			b.log.Warn("joined run failed; re-running its requests one by one", "requests", len(live), "rows", total, "error", err)
		}
		b.runEach(live)
		return
	}
	for i, c := range live {
		c.done <- result{outputs: parts[i]}
	}
}

// runEach runs every member still waiting on its own, so that a failure
// stays with the request that caused it.
func (b *Batcher) runEach(calls []*call) {
	for _, c := range calls {
		if c.ctx.Err() != nil {
			continue
		}
		out, err := b.safeInfer(c.ctx, c.inputs)
		c.done <- result{outputs: out, err: err}
	}
}

// errEnginePanic reports an engine that panicked during a queued run.
var errEnginePanic = errors.New("inference engine panicked")

// safeInfer runs the engine on one of the batcher's own goroutines, where
// no server recovery is on the stack: a panic becomes that run's error (and,
// for a joined run, a re-run of each member) instead of ending the process.
func (b *Batcher) safeInfer(ctx context.Context, inputs []oip.Tensor) (out []oip.Tensor, err error) {
	defer func() {
		if p := recover(); p != nil {
			b.log.Error("inference engine panicked", "panic", fmt.Sprint(p))
			out, err = nil, fmt.Errorf("%w: %v", errEnginePanic, p)
		}
	}()
	return b.engine.Infer(ctx, inputs)
}

// leaveTogether gives a joined run a context of its own, cancelled only
// once every member's context has ended: one caller leaving must not fail
// its neighbours, but nobody should wait on a run no one will read.
func leaveTogether(calls []*call) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.Background())
	var left atomic.Int64
	left.Store(int64(len(calls)))
	stops := make([]func() bool, len(calls))
	for i, c := range calls {
		stops[i] = context.AfterFunc(c.ctx, func() {
			if left.Add(-1) == 0 {
				cancel()
			}
		})
	}
	return ctx, func() {
		for _, stop := range stops {
			stop()
		}
		cancel()
	}
}
