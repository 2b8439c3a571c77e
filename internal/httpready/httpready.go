// Package httpready waits for a freshly started HTTP server to answer its
// readiness URL. veil run (pipeline), the e2e harness and the bench all
// start servers in child processes and must neither give up too early nor
// wait on a child that has already died.
package httpready

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"time"
)

// Interval is the pause between probes.
const Interval = 50 * time.Millisecond

// probeTimeout bounds one probe, so that a port answered by something else
// that never replies cannot stall the wait for long.
const probeTimeout = time.Second

// NotReadyError is a wait that ctx ended before url answered 200.
type NotReadyError struct {
	URL  string
	Last error // the last probe's failure (a transport error or "status N")
	Err  error // ctx's error
}

func (e *NotReadyError) Error() string {
	return fmt.Sprintf("%s not ready (last: %v): %v", e.URL, e.Last, e.Err)
}

func (e *NotReadyError) Unwrap() error { return e.Err }

// Wait GETs url with client (nil: http.DefaultClient) until it answers 200
// OK. A non-nil gone is asked before each probe; its error (the server has
// ended) is returned at once. If ctx ends first, the error is a
// *NotReadyError.
func Wait(ctx context.Context, client *http.Client, url string, gone func() error) error {
	if client == nil {
		client = http.DefaultClient
	}
	t := time.NewTicker(Interval)
	defer t.Stop()
	var last error
	for {
		if gone != nil {
			if err := gone(); err != nil {
				return err
			}
		}
		status, err := probe(ctx, client, url)
		if err == nil && status == http.StatusOK {
			return nil
		}
		if err == nil {
			err = fmt.Errorf("status %d", status)
		}
		// A probe cut short by ctx's end says less than the one before it.
		if ctx.Err() == nil || last == nil {
			last = err
		}
		select {
		case <-t.C:
		case <-ctx.Done():
			return &NotReadyError{URL: url, Last: last, Err: ctx.Err()}
		}
	}
}

// probe GETs url once and returns its status.
func probe(ctx context.Context, client *http.Client, url string) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, fmt.Errorf("probe %s: %w", url, err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	// Drained so the connection can be reused for the next probe.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	return resp.StatusCode, nil
}
