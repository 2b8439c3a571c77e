package main

import (
	"context"
	"fmt"
	"math"
	"slices"
	"sync"
	"time"
)

// op performs one request of a known number of rows.
type op func(ctx context.Context) error

// newOp builds one client's op; each client gets its own so that no
// buffers or connections are shared between clients unless the transport
// itself shares them.
type newOp func(client int) (op, error)

// result is one scenario's measurement.
type result struct {
	rows     float64 // rows per second over the measured window
	requests int
	p50, p99 time.Duration
	// cpu is the CPU time the measured process (the server, or this
	// process for in-process rows) spent in the window; 0 when unknown.
	cpu    time.Duration
	window time.Duration
}

// rowsPerCore is rows per second of server CPU time: what one fully busy
// core sustains, the unit of the capacity model.
func (r result) rowsPerCore() float64 {
	if r.cpu <= 0 {
		return 0
	}
	return r.rows * r.window.Seconds() / r.cpu.Seconds()
}

// cpuMeter reads a process's cumulative CPU time.
type cpuMeter func() (time.Duration, error)

// measure runs clients closed-loop copies of op (each sends its next
// request when the previous one answers) for warmup, then for duration,
// and reports only the second window. A request that fails ends the run:
// a benchmark of errors measures nothing.
func measure(ctx context.Context, clients, rowsPerOp int, warmup, duration time.Duration, mk newOp, cpu cpuMeter) (result, error) {
	ops := make([]op, clients)
	for i := range ops {
		o, err := mk(i)
		if err != nil {
			return result{}, fmt.Errorf("set up client %d: %w", i, err)
		}
		ops[i] = o
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	start := time.Now()
	measureFrom := start.Add(warmup)
	end := measureFrom.Add(duration)
	lat := make([][]time.Duration, clients)
	errs := make([]error, clients)
	var wg sync.WaitGroup
	for i := range ops {
		wg.Go(func() {
			l := make([]time.Duration, 0, 4096)
			for ctx.Err() == nil {
				t0 := time.Now()
				// Every client records at least one request, even when
				// the machine stalled it through the whole window.
				if t0.After(end) && len(l) > 0 {
					break
				}
				if err := ops[i](ctx); err != nil {
					if ctx.Err() == nil {
						errs[i] = err
						cancel()
					}
					break
				}
				if t0.After(measureFrom) {
					l = append(l, time.Since(t0))
				}
			}
			lat[i] = l
		})
	}
	var cpuStart time.Duration
	var cpuErr error
	if cpu != nil {
		select {
		case <-time.After(time.Until(measureFrom)):
		case <-ctx.Done():
		}
		cpuStart, cpuErr = cpu()
	}
	wg.Wait()
	var cpuUsed time.Duration
	if cpu != nil && cpuErr == nil {
		if cpuEnd, err := cpu(); err == nil {
			cpuUsed = cpuEnd - cpuStart
		}
	}
	for _, err := range errs {
		if err != nil {
			return result{}, err
		}
	}
	// The window ends when the last request that started in it answers.
	window := time.Since(measureFrom)
	all := slices.Concat(lat...)
	if len(all) == 0 {
		return result{}, fmt.Errorf("no request completed in %v", duration)
	}
	slices.Sort(all)
	return result{
		rows:     float64(len(all)*rowsPerOp) / window.Seconds(),
		requests: len(all),
		p50:      percentile(all, 0.50),
		p99:      percentile(all, 0.99),
		cpu:      cpuUsed,
		window:   window,
	}, nil
}

// percentile of sorted latencies, nearest-rank: the smallest sample with at
// least p of all samples at or below it.
func percentile(sorted []time.Duration, p float64) time.Duration {
	i := int(math.Ceil(p*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}
