// Package batcher turns many concurrent scoring requests into few model
// requests: rows queue up until --max_batch_size rows or --max_latency,
// then one inference request carries them, with bounded concurrency and a
// deadline each. Results are mapped back to each row's waiter and kept in a
// bounded (source, id) cache so that a redelivered event is never scored
// twice. The package knows nothing of CloudEvents or of the wire protocol.
package batcher

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// Inferer runs one model request: rows holds n rows of width features,
// row-major; the output has one score per row, in order.
type Inferer interface {
	Infer(ctx context.Context, rows []float32, n, width int) (Output, error)
}

// Output is what the model answered for one batch.
type Output struct {
	Scores  []float32
	Model   string
	Version string
}

// Scored is one row's result.
type Scored struct {
	Key           string
	TransactionID string
	Score         float32
	Model         string
	Version       string
}

// Request is one row to score. Key identifies the event (source and id):
// requests with the same key are scored once.
type Request struct {
	Key           string
	TransactionID string
	Features      []float32
}

// Outcome is a request's result or why there is none. Duplicate is set
// when the result came from the dedup cache or from an identical request
// already in flight.
type Outcome struct {
	Scored
	Err       error
	Duplicate bool
}

// Publisher, when set, receives each scored batch before any of its
// requests are answered (e.g. one batched result event to K_SINK); if it
// fails, the whole batch fails and is not cached, so redelivery retries it.
type Publisher func(ctx context.Context, batch []Scored) error

// Observer receives one call per model request.
type Observer func(rows int, took time.Duration, err error)

// ErrQueueFull means the local queue is at capacity: the caller should ask
// the sender to retry later (HTTP 429).
var ErrQueueFull = errors.New("batcher queue full")

// ErrClosed means the batcher is shutting down.
var ErrClosed = errors.New("batcher closed")

// Config sizes the batcher.
type Config struct {
	Width          int           // features per row
	MaxBatchSize   int           // rows per model request
	MaxLatency     time.Duration // longest a row waits for its batch to fill
	MaxConcurrency int           // model requests in flight
	QueueSize      int           // rows waiting for a batch
	RequestTimeout time.Duration // deadline of one model request
	DedupSize      int           // results remembered for redeliveries
	DedupTTL       time.Duration // how long they are remembered (0 = until evicted)
	Publisher      Publisher
	Observer       Observer
	Now            func() time.Time
}

// Validate checks the sizes.
func (c *Config) Validate() error {
	switch {
	case c.Width <= 0:
		return fmt.Errorf("batcher: width %d must be positive", c.Width)
	case c.MaxBatchSize <= 0:
		return fmt.Errorf("batcher: max batch size %d must be positive", c.MaxBatchSize)
	case c.MaxLatency < 0:
		return fmt.Errorf("batcher: max latency %v must not be negative", c.MaxLatency)
	case c.MaxConcurrency <= 0:
		return fmt.Errorf("batcher: max concurrency %d must be positive", c.MaxConcurrency)
	case c.QueueSize < c.MaxBatchSize:
		return fmt.Errorf("batcher: queue size %d must hold at least one batch (%d)", c.QueueSize, c.MaxBatchSize)
	case c.RequestTimeout <= 0:
		return fmt.Errorf("batcher: request timeout %v must be positive", c.RequestTimeout)
	case c.DedupSize < 0:
		return fmt.Errorf("batcher: dedup size %d must not be negative", c.DedupSize)
	}
	return nil
}

// pending is one row waiting for its batch; waiters for the same key share it.
type pending struct {
	req  Request
	done chan struct{}
	res  Scored
	err  error
}

// Batcher collects rows into model requests. Create it with New, stop it
// with Close.
type Batcher struct {
	cfg   Config
	inf   Inferer
	queue chan *pending

	mu       sync.Mutex
	inflight map[string]*pending
	cache    *dedupCache
	closed   bool

	flushNow chan struct{} // closed by Drain: stop waiting for batches to fill
	drainOne sync.Once
	stop     chan struct{} // closed by Close: collector empties the queue and exits
	stopOnce sync.Once
	stopped  chan struct{} // closed when the collector and every request are done

	sem     chan struct{}
	workers sync.WaitGroup
	baseCtx context.Context
	cancel  context.CancelFunc
}

// New starts a batcher's collector goroutine.
func New(cfg Config, inf Inferer) (*Batcher, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if inf == nil {
		return nil, errors.New("batcher: nil inferer")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	ctx, cancel := context.WithCancel(context.Background())
	b := &Batcher{
		cfg:      cfg,
		inf:      inf,
		queue:    make(chan *pending, cfg.QueueSize),
		inflight: make(map[string]*pending),
		cache:    newDedupCache(cfg.DedupSize, cfg.DedupTTL, cfg.Now),
		flushNow: make(chan struct{}),
		stop:     make(chan struct{}),
		stopped:  make(chan struct{}),
		sem:      make(chan struct{}, cfg.MaxConcurrency),
		baseCtx:  ctx,
		cancel:   cancel,
	}
	go b.collect()
	return b, nil
}

// Score submits the requests and waits for all of them (or ctx). out[i] is
// the outcome of reqs[i]; out must be as long as reqs. Rows that could not
// be queued fail at once with ErrQueueFull; rows already queued are still
// scored and cached even if others fail, so a retry of the whole set is
// cheap.
func (b *Batcher) Score(ctx context.Context, reqs []Request, out []Outcome) {
	waits := make([]*pending, len(reqs))
	b.mu.Lock()
	for i, r := range reqs {
		if len(r.Features) != b.cfg.Width {
			out[i] = Outcome{Err: fmt.Errorf("batcher: row has %d features, model takes %d", len(r.Features), b.cfg.Width)}
			continue
		}
		if s, ok := b.cache.get(r.Key); ok {
			out[i] = Outcome{Scored: s, Duplicate: true}
			continue
		}
		if p, ok := b.inflight[r.Key]; ok {
			waits[i] = p
			out[i].Duplicate = true
			continue
		}
		if b.closed {
			out[i] = Outcome{Err: ErrClosed}
			continue
		}
		p := &pending{req: r, done: make(chan struct{})}
		select {
		case b.queue <- p:
			b.inflight[r.Key] = p
			waits[i] = p
		default:
			out[i] = Outcome{Err: ErrQueueFull}
		}
	}
	b.mu.Unlock()
	for i, p := range waits {
		if p == nil {
			continue
		}
		select {
		case <-p.done:
			out[i].Scored, out[i].Err = p.res, p.err
		case <-ctx.Done():
			out[i].Err = fmt.Errorf("waiting for score: %w", ctx.Err())
		}
	}
}

// QueueLen is the number of rows waiting for a batch.
func (b *Batcher) QueueLen() int { return len(b.queue) }

// CacheLen is the number of results remembered for redeliveries.
func (b *Batcher) CacheLen() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.cache.len()
}

// Drain stops waiting for batches to fill: from now on every row is sent
// as soon as it arrives (up to MaxBatchSize at once). Used on SIGTERM,
// while in-flight HTTP requests finish.
func (b *Batcher) Drain() { b.drainOne.Do(func() { close(b.flushNow) }) }

// Close refuses new rows, sends every queued row, and waits for all model
// requests to finish or ctx to end (then in-flight requests are cancelled).
func (b *Batcher) Close(ctx context.Context) error {
	b.Drain()
	b.mu.Lock()
	b.closed = true
	b.mu.Unlock()
	b.stopOnce.Do(func() { close(b.stop) })
	select {
	case <-b.stopped:
		b.cancel()
		return nil
	case <-ctx.Done():
		b.cancel()
		<-b.stopped
		return fmt.Errorf("batcher close: %w", ctx.Err())
	}
}

// collect is the single goroutine that forms batches.
func (b *Batcher) collect() {
	defer close(b.stopped)
	defer b.workers.Wait()
	batch := make([]*pending, 0, b.cfg.MaxBatchSize)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	var timerC <-chan time.Time
	flushNow := b.flushNow
	flush := func() {
		if len(batch) == 0 {
			return
		}
		timer.Stop()
		timerC = nil
		b.dispatch(batch)
		batch = make([]*pending, 0, b.cfg.MaxBatchSize)
	}
	for {
		select {
		case p := <-b.queue:
			batch = append(batch, p)
			if len(batch) >= b.cfg.MaxBatchSize {
				flush()
				continue
			}
			if flushNow == nil || b.cfg.MaxLatency == 0 {
				// Draining (or no latency budget): take whatever else is
				// already queued, then send.
				b.takeQueued(&batch)
				flush()
				continue
			}
			if len(batch) == 1 {
				timer.Reset(b.cfg.MaxLatency)
				timerC = timer.C
			}
		case <-timerC:
			timerC = nil
			flush()
		case <-flushNow:
			flushNow = nil
			flush()
		case <-b.stop:
			for {
				b.takeQueued(&batch)
				if len(batch) == 0 {
					return
				}
				flush()
			}
		}
	}
}

// takeQueued moves already-queued rows into batch without waiting, up to
// MaxBatchSize.
func (b *Batcher) takeQueued(batch *[]*pending) {
	for len(*batch) < b.cfg.MaxBatchSize {
		select {
		case p := <-b.queue:
			*batch = append(*batch, p)
		default:
			return
		}
	}
}

// dispatch waits for a concurrency slot (which is what pushes back on the
// queue, and so on senders) and runs the batch.
func (b *Batcher) dispatch(batch []*pending) {
	b.sem <- struct{}{}
	b.workers.Add(1)
	go func() {
		defer func() { <-b.sem; b.workers.Done() }()
		b.run(batch)
	}()
}

func (b *Batcher) run(batch []*pending) {
	n, w := len(batch), b.cfg.Width
	rows := make([]float32, 0, n*w)
	for _, p := range batch {
		rows = append(rows, p.req.Features...)
	}
	ctx, cancel := context.WithTimeout(b.baseCtx, b.cfg.RequestTimeout)
	defer cancel()
	start := b.cfg.Now()
	out, err := b.inf.Infer(ctx, rows, n, w)
	if err == nil && len(out.Scores) != n {
		err = fmt.Errorf("model returned %d scores for %d rows", len(out.Scores), n)
	}
	if err != nil {
		err = fmt.Errorf("score batch of %d rows: %w", n, err)
	}
	if b.cfg.Observer != nil {
		b.cfg.Observer(n, b.cfg.Now().Sub(start), err)
	}
	var results []Scored
	if err == nil {
		results = make([]Scored, n)
		for i, p := range batch {
			results[i] = Scored{Key: p.req.Key, TransactionID: p.req.TransactionID, Score: out.Scores[i], Model: out.Model, Version: out.Version}
		}
		if b.cfg.Publisher != nil {
			if perr := b.cfg.Publisher(ctx, results); perr != nil {
				err = fmt.Errorf("publish batch of %d results: %w", n, perr)
			}
		}
	}
	b.mu.Lock()
	for i, p := range batch {
		delete(b.inflight, p.req.Key)
		if err == nil {
			p.res = results[i]
			b.cache.put(p.req.Key, results[i])
		} else {
			p.err = err
		}
	}
	b.mu.Unlock()
	for _, p := range batch {
		close(p.done)
	}
}
