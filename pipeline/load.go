package pipeline

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	"golang.org/x/time/rate"
)

// TransactionEventType is the CloudEvents type the batcher scores.
const TransactionEventType = "dev.veil.transaction.v1"

// Transaction is one generated transaction: its event data (the dataset's
// columns and transaction_id, as JSON) and the generator's ground truth.
type Transaction struct {
	ID    string
	Fraud bool
	Data  []byte
}

// LoadConfig says how to send the transactions.
type LoadConfig struct {
	Target      string  // the batcher's URL
	Source      string  // CloudEvents source attribute
	Rate        float64 // events per second; 0 = as fast as Concurrency allows
	Concurrency int     // events in flight; the batcher answers each only once scored
	MaxAttempts int     // per event, for 429/5xx answers and connection errors
	Backoff     time.Duration
	Progress    *Progress // may be nil
}

// sendAll sends txs as binary-mode CloudEvents and returns, per
// transaction, when its first attempt left. It fails if any event is
// still undelivered after its retries.
func sendAll(ctx context.Context, cfg LoadConfig, txs []Transaction) ([]Sent, error) {
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 1
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = 1
	}
	if cfg.Backoff <= 0 {
		cfg.Backoff = 50 * time.Millisecond
	}
	// One keep-alive connection per worker: without it Go's default of two
	// idle connections per host churns through ephemeral ports.
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.MaxIdleConnsPerHost = cfg.Concurrency
	transport.MaxConnsPerHost = cfg.Concurrency
	c, err := cloudevents.NewClientHTTP(
		cehttp.WithTarget(cfg.Target),
		cehttp.WithClient(http.Client{Transport: transport, Timeout: 60 * time.Second}),
	)
	if err != nil {
		return nil, fmt.Errorf("cloudevents client: %w", err)
	}
	defer transport.CloseIdleConnections()

	limit := rate.Inf
	if cfg.Rate > 0 {
		limit = rate.Limit(cfg.Rate)
	}
	limiter := rate.NewLimiter(limit, 1)

	sent := make([]Sent, len(txs))
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, cfg.Concurrency)
	parent := ctx
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for range cfg.Concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= len(txs) {
					return
				}
				if err := limiter.Wait(ctx); err != nil {
					return // cancelled; reported below
				}
				at, attempts, err := sendOne(ctx, c, cfg, txs[i])
				if err != nil {
					errs <- fmt.Errorf("transaction %d (%s): %w", i, txs[i].ID, err)
					cancel()
					return
				}
				sent[i] = Sent{ID: txs[i].ID, Fraud: txs[i].Fraud, At: at, Bytes: len(txs[i].Data), Attempts: attempts}
				cfg.Progress.Add(1)
			}
		}()
	}
	wg.Wait()
	close(errs)
	// An interrupt surfaces in the workers as failed sends: report it as
	// what it is.
	if parent.Err() != nil {
		return nil, fmt.Errorf("stopped after %d of %d: %w", cfg.Progress.Done(), len(txs), context.Cause(parent))
	}
	if err := <-errs; err != nil {
		return nil, err
	}
	return sent, nil
}

// sendOne delivers one event, retrying what a retry can fix, and returns
// when the first attempt started (the latency clock runs across retries)
// and how many attempts it took.
func sendOne(ctx context.Context, c cloudevents.Client, cfg LoadConfig, tx Transaction) (time.Time, int, error) {
	e := cloudevents.NewEvent()
	e.SetID(tx.ID)
	e.SetSource(cfg.Source)
	e.SetType(TransactionEventType)
	if err := e.SetData(cloudevents.ApplicationJSON, tx.Data); err != nil {
		return time.Time{}, 0, fmt.Errorf("event data: %w", err)
	}
	start := time.Now()
	backoff := cfg.Backoff
	var last error
	for attempt := 1; attempt <= cfg.MaxAttempts; attempt++ {
		res := c.Send(ctx, e)
		if cloudevents.IsACK(res) {
			return start, attempt, nil
		}
		last = res
		if !retryable(res) {
			return start, attempt, fmt.Errorf("rejected: %w", res)
		}
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return start, attempt, ctx.Err()
		}
		backoff = min(2*backoff, 2*time.Second)
	}
	return start, cfg.MaxAttempts, fmt.Errorf("undelivered after %d attempts: %w", cfg.MaxAttempts, last)
}

// retryable: the batcher's 429 (queue full) and 5xx (runtime unreachable or
// draining) ask for a redelivery, as does a connection that failed.
func retryable(res error) bool {
	var hr *cehttp.Result
	if errors.As(res, &hr) {
		return hr.StatusCode == http.StatusTooManyRequests || hr.StatusCode >= 500
	}
	return !errors.Is(res, context.Canceled)
}
