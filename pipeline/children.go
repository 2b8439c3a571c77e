package pipeline

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"
)

// bindAttempts bounds restarts after a lost port race: a port found free
// can be taken by another process before the child binds it.
const bindAttempts = 3

// startListening launches a server child (launch picks its ports and
// returns its readiness URL) and waits until it is ready. A child that
// exited because its port was taken meanwhile is started again on other
// ports, unless the ports were fixed by flags.
func (r *run) startListening(ctx context.Context, what string, fixedPorts bool, launch func() (*proc, string, error)) (*proc, error) {
	for attempt := 1; ; attempt++ {
		p, readyURL, err := launch()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		wctx, cancel := context.WithTimeout(ctx, r.cfg.StartTimeout)
		err = r.waitHTTP(wctx, p, readyURL)
		cancel()
		if err == nil {
			return p, nil
		}
		exited, _ := p.exited()
		if fixedPorts || !exited || attempt == bindAttempts || !lostPortRace(p) {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		slog.Warn("port taken before the child bound it; retrying on other ports", "child", p.spec.name, "attempt", attempt)
	}
}

func lostPortRace(p *proc) bool {
	_, found := p.out.find(func(s string) bool { return strings.Contains(s, "address already in use") })
	return found
}

// endpoint records where a piece listened, for the summary (a test checks
// that each is closed after the run).
func (r *run) endpoint(name, addr string) {
	if r.result.Summary.Endpoints == nil {
		r.result.Summary.Endpoints = map[string]string{}
	}
	r.result.Summary.Endpoints[name] = addr
}

// startChild starts a long-running child and registers it for cleanup.
func (r *run) startChild(name, path string, env []string, args ...string) (*proc, error) {
	var echo io.Writer
	if r.cfg.Verbose {
		echo = r.cfg.Stderr
	}
	// TMPDIR points into the private temp dir, so whatever a child leaves
	// in its temp dir (onnxruntime's telemetry writes $TMPDIR/.ses) goes
	// when the run's temp dir does.
	env = append(env, "TMPDIR="+r.tmp)
	p, err := startProc(procSpec{name: name, path: path, args: args, env: env, echo: echo, grace: r.cfg.StopGrace})
	if err != nil {
		return nil, err
	}
	r.procs = append(r.procs, p)
	return p, nil
}

// runOnce runs a short-lived child to completion.
func (r *run) runOnce(ctx context.Context, name, path string, args ...string) error {
	p, err := r.startChild(name, path, nil, args...)
	if err != nil {
		return err
	}
	return p.run(ctx)
}

// waitHTTP polls url until it answers 200, the child exits, or ctx ends.
func (r *run) waitHTTP(ctx context.Context, p *proc, url string) error {
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	var last error
	for {
		if exited, perr := p.exited(); exited {
			return fmt.Errorf("%s exited (%v) before %s answered:\n%s", p.spec.name, perr, url, p.out.tail(20))
		}
		status, err := r.probe(ctx, url)
		if err == nil && status == http.StatusOK {
			return nil
		}
		if err == nil {
			err = fmt.Errorf("status %d", status)
		}
		last = err
		select {
		case <-t.C:
		case <-ctx.Done():
			return fmt.Errorf("%s not ready (last: %v): %w\n%s", url, last, ctx.Err(), p.out.tail(20))
		}
	}
}

// probeTimeout bounds one readiness probe, so that a port answered by
// something else that never replies cannot stall the wait for long.
const probeTimeout = time.Second

// probe GETs url once and returns its status.
func (r *run) probe(ctx context.Context, url string) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, fmt.Errorf("probe %s: %w", url, err)
	}
	resp, err := r.http.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	return resp.StatusCode, nil
}
