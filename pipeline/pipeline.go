// Package pipeline runs Veil's whole confidential fraud-scoring pipeline
// on one machine, for `veil run`: it seals the bundled model with a fresh
// key, starts the development KBS and uploads the key, cold-starts the
// runtime on the sealed model (sample TEE: development only), starts the
// batcher with a local CloudEvents sink as K_SINK, sends generated
// transactions and reports what came back against the generator's ground
// truth. Every child runs in its own process group and is stopped with
// SIGTERM (then SIGKILL) on every exit path, Ctrl-C included; the private
// temp dir holding the sealed model, key and admin token is removed.
package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/veil-ai/veil/internal/freeport"
)

// Result is a finished run: the summary and the raw material behind it.
type Result struct {
	Summary Summary
	Sent    []Sent
	First   map[string]Arrival // first result per transaction id
	Outcome Outcome
	TempDir string // removed by the time Run returns
}

// run is one pipeline run's state.
type run struct {
	cfg    Config
	out    io.Writer
	http   *http.Client
	tmp    string
	procs  []*proc // started children, in start order
	sink   *Sink
	result *Result
}

// Run runs the pipeline to the end, or until ctx is cancelled; either way
// it stops every child and removes its temp dir before returning.
func Run(ctx context.Context, cfg Config) (res *Result, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	r := &run{cfg: cfg, out: cfg.Stdout, http: &http.Client{Timeout: 5 * time.Second}, result: &Result{}}
	defer func() {
		cerr := r.cleanup()
		if cerr == nil && err != nil && errors.Is(ctx.Err(), context.Canceled) {
			fmt.Fprintln(r.out, "interrupted: every process stopped, temp files removed")
		}
		err = errors.Join(err, cerr)
	}()
	if err := r.steps(ctx); err != nil {
		return nil, err
	}
	return r.result, nil
}

func (r *run) printf(format string, args ...any) { fmt.Fprintf(r.out, format, args...) }

func (r *run) steps(ctx context.Context) error {
	for _, name := range []string{"veil", "veil-runtime", "veil-batcher"} {
		if _, err := os.Stat(filepath.Join(r.cfg.BinDir, name)); err != nil {
			return fmt.Errorf("%s not found in %s (run `make build`, or pass --bin_dir): %w", name, r.cfg.BinDir, err)
		}
	}
	r.printf("veil run: DEVELOPMENT ONLY. The key is released to the `sample` TEE, which proves nothing\n" +
		"(--insecure_allow_sample_tee). Production attests with Intel TDX evidence.\n\n")
	tmp, err := os.MkdirTemp("", "veil-run-*")
	if err != nil {
		return fmt.Errorf("private temp dir: %w", err)
	}
	r.tmp, r.result.TempDir = tmp, tmp
	if err := os.Chmod(tmp, 0o700); err != nil {
		return fmt.Errorf("private temp dir: %w", err)
	}

	kbsURL, err := r.sealAndStoreKey(ctx)
	if err != nil {
		return err
	}
	rt, err := r.startRuntime(ctx, kbsURL)
	if err != nil {
		return err
	}
	batcherURL, batcherMetrics, err := r.startBatcher(ctx, rt)
	if err != nil {
		return err
	}
	return r.score(ctx, batcherURL, batcherMetrics)
}

// cleanup stops the children newest first (batcher drains before the
// runtime goes, the KBS goes last), closes the sink and removes the temp
// dir. It runs on every exit path.
func (r *run) cleanup() error {
	var errs []error
	for i := len(r.procs) - 1; i >= 0; i-- {
		p := r.procs[i]
		// A child that had already exited was reported where it failed.
		exitedBefore, _ := p.exited()
		if err := p.stop(); err != nil && !exitedBefore {
			errs = append(errs, err)
		}
	}
	if r.sink != nil {
		ctx, cancel := context.WithTimeout(context.Background(), r.cfg.StopGrace)
		errs = append(errs, r.sink.Close(ctx))
		cancel()
	}
	if r.tmp != "" {
		if err := os.RemoveAll(r.tmp); err != nil {
			errs = append(errs, fmt.Errorf("remove temp dir: %w", err))
		}
	}
	return errors.Join(errs...)
}

func loopback(port int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) }

// portOrFree returns port, or a loopback port that was free a moment ago.
func portOrFree(port int) (int, error) {
	if port != 0 {
		return port, nil
	}
	return freeport.Loopback()
}

func since(t time.Time) string { return round(time.Since(t)) }

func round(d time.Duration) string {
	switch {
	case d >= time.Second:
		return d.Round(10 * time.Millisecond).String()
	case d >= time.Millisecond:
		return d.Round(100 * time.Microsecond).String()
	default:
		return d.Round(time.Microsecond).String()
	}
}
