package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/veil-ai/veil/internal/httpready"
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
	gone := func() error {
		if exited, perr := p.exited(); exited {
			return fmt.Errorf("%s exited (%v) before %s answered:\n%s", p.spec.name, perr, url, p.out.tail(20))
		}
		return nil
	}
	err := httpready.Wait(ctx, r.http, url, gone)
	var notReady *httpready.NotReadyError
	if errors.As(err, &notReady) {
		return fmt.Errorf("%w\n%s", err, p.out.tail(20))
	}
	return err
}
