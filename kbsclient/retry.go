package kbsclient

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"
)

// Backoff configures retries. Zero values take the defaults.
type Backoff struct {
	Initial time.Duration // first wait, default 250ms
	Max     time.Duration // cap per wait, default 10s
	// Timeout bounds the whole call when ctx has no deadline, default 5m.
	Timeout time.Duration
}

func (b Backoff) withDefaults() Backoff {
	if b.Initial <= 0 {
		b.Initial = 250 * time.Millisecond
	}
	if b.Max <= 0 {
		b.Max = 10 * time.Second
	}
	if b.Max < b.Initial {
		b.Max = b.Initial
	}
	if b.Timeout <= 0 {
		b.Timeout = 5 * time.Minute
	}
	return b
}

// permanentError marks a failure that retrying cannot fix.
type permanentError struct{ err error }

func (p permanentError) Error() string { return p.err.Error() }
func (p permanentError) Unwrap() error { return p.err }

func permanent(err error) error { return permanentError{err} }

// retry runs attempt until it succeeds, returns a permanent error, or ctx
// ends. The last attempt's error is kept so a deadline says why.
func retry(ctx context.Context, b Backoff, log *slog.Logger, what string, attempt func(ctx context.Context) error) (int, error) {
	b = b.withDefaults()
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, b.Timeout)
		defer cancel()
	}
	wait := b.Initial
	var prev error
	for n := 1; ; n++ {
		err := attempt(ctx)
		if err == nil {
			return n, nil
		}
		var p permanentError
		if errors.As(err, &p) {
			return n, p.err
		}
		if ctx.Err() != nil {
			// An attempt cut short by the deadline says less than the
			// one before it (e.g. "connection refused").
			if prev != nil && errors.Is(err, ctx.Err()) {
				err = prev
			}
			return n, fmt.Errorf("%s: gave up after %d attempts: %w (last error: %w)", what, n, context.Cause(ctx), err)
		}
		// Full jitter keeps many pods from hammering a recovering KBS in step.
		sleep := time.Duration(rand.Int64N(int64(wait))) + wait/2
		log.Warn("retrying", "what", what, "attempt", n, "wait", sleep.Round(time.Millisecond), "err", err)
		t := time.NewTimer(sleep)
		select {
		case <-ctx.Done():
			t.Stop()
			return n, fmt.Errorf("%s: gave up after %d attempts: %w (last error: %w)", what, n, context.Cause(ctx), err)
		case <-t.C:
		}
		prev = err
		wait = min(wait*2, b.Max)
	}
}
