// Package knfunc presents the batcher as a Knative Functions "instanced"
// Go function (knative.dev/func-go's lifecycle: Start, Handle, Ready,
// Alive, Stop), so that `func deploy` can build and run it from
// functions/knative. Configuration comes from func's config map (the
// environment set in func.yaml), with the same names as veil-batcher's
// environment fallback (VEIL_RUNTIME_URL, VEIL_PROTOCOL, K_SINK, ...).
//
// func-go serves HTTP with sdk-go's receive handler, which takes binary
// and structured mode only; batched mode needs bin/veil-batcher.
package knfunc

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"sync"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/veil-ai/veil/functions"
)

// Function is one batcher instance.
type Function struct {
	mu  sync.RWMutex
	svc *functions.Service
}

// New is what the func scaffolding calls.
func New() *Function { return &Function{} }

// Start builds the service from cfg (environment-style keys).
func (f *Function) Start(_ context.Context, cfg map[string]string) error {
	c, err := functions.ParseFlags(nil, func(k string) string { return cfg[k] }, io.Discard)
	if err != nil {
		return err
	}
	c.Logger = slog.New(slog.NewJSONHandler(os.Stderr, nil))
	svc, err := functions.New(c)
	if err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.svc = svc
	return nil
}

// Handle scores one transaction event; failures carry their HTTP status.
func (f *Function) Handle(ctx context.Context, e event.Event) (*event.Event, error) {
	f.mu.RLock()
	svc := f.svc
	f.mu.RUnlock()
	if svc == nil {
		return nil, errors.New("knfunc: not started")
	}
	return svc.Handle(ctx, e)
}

// Ready reports whether Start has completed.
func (f *Function) Ready(context.Context) (bool, error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.svc != nil, nil
}

// Alive is always true while the process runs.
func (f *Function) Alive(context.Context) (bool, error) { return true, nil }

// Stop flushes open batches and waits for them (func-go calls it on
// SIGTERM after its HTTP server has drained).
func (f *Function) Stop(ctx context.Context) error {
	f.mu.Lock()
	svc := f.svc
	f.svc = nil
	f.mu.Unlock()
	if svc == nil {
		return nil
	}
	return svc.Close(ctx)
}
