package main

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/veil-ai/veil/oip"
	"github.com/veil-ai/veil/oip/client"
)

// protocolNames are the four OIP transports as oip/client names them on
// the command line.
func protocolNames() []string {
	var p []string
	for _, c := range client.Protocols {
		p = append(p, string(c))
	}
	return p
}

const protoRESTJSON = string(client.RESTJSON)

func validProtocol(p string) bool { return slices.Contains(protocolNames(), p) }

// protocolLabel is a transport's name in the table.
func protocolLabel(p client.Protocol) string {
	switch p {
	case client.RESTJSON:
		return "REST JSON"
	case client.RESTBinary:
		return "REST binary"
	case client.GRPC:
		return "gRPC typed"
	case client.GRPCRaw:
		return "gRPC raw"
	}
	return string(p)
}

func loadScenario(p client.Protocol, clients int, batching bool) string {
	state := "off"
	if batching {
		state = "on"
	}
	return fmt.Sprintf("%s, %d clients × 1 row, batching %s", protocolLabel(p), clients, state)
}

// serverRows measures veil-runtime over every transport at every batch
// size, then the concurrent single-row load with batching on and off.
func (b *bench) serverRows(ctx context.Context) {
	loadProto := client.Protocol(b.cfg.loadProtocol)
	var sweep []string
	for _, p := range client.Protocols {
		sweep = append(sweep, protocolLabel(p))
	}
	wantSweep := slices.ContainsFunc(sweep, b.cfg.only.MatchString)
	onName := loadScenario(loadProto, b.cfg.loadClients, true)
	offName := loadScenario(loadProto, b.cfg.loadClients, false)

	// The shipped defaults serve the sweep and the batching-on row.
	if wantSweep || b.cfg.only.MatchString(onName) {
		srv, err := startRuntime(ctx, b.cfg, batchSettings{b.cfg.maxBatchSize, b.cfg.maxBatchTime})
		if err != nil {
			b.skip("veil-runtime", 1, b.cfg.clients, err)
		} else {
			for _, p := range client.Protocols {
				for _, n := range b.cfg.batches {
					b.measureRow(ctx, protocolLabel(p), n, b.cfg.clients, clientOp(srv, p, n, b.cfg.clients), srv.cpu())
				}
			}
			b.loadRow(ctx, srv, onName, loadProto)
			srv.stop()
		}
	}
	if b.cfg.only.MatchString(offName) {
		srv, err := startRuntime(ctx, b.cfg, batchSettings{1, b.cfg.maxBatchTime})
		if err != nil {
			b.skip(offName, 1, b.cfg.loadClients, err)
			return
		}
		defer srv.stop()
		b.loadRow(ctx, srv, offName, loadProto)
	}
	b.reorderLoadRows(offName, onName)
}

// loadRow measures the concurrent single-row load and notes how many rows
// the engine ran at a time, from the batcher's own metrics.
func (b *bench) loadRow(ctx context.Context, srv *runtimeServer, name string, p client.Protocol) {
	runs0, rows0, err0 := srv.batchRuns(ctx)
	r := b.measureRow(ctx, name, 1, b.cfg.loadClients, clientOp(srv, p, 1, b.cfg.loadClients), srv.cpu())
	if r == nil || r.err != nil || err0 != nil {
		return
	}
	runs1, rows1, err := srv.batchRuns(ctx)
	if err != nil || runs1 <= runs0 {
		return
	}
	r.note = fmt.Sprintf("%s: the engine ran %.0f times, %.1f rows per run on average (warm-up included).",
		name, runs1-runs0, (rows1-rows0)/(runs1-runs0))
}

// reorderLoadRows puts batching off before on, the order a reader compares
// them in, although on is measured first (it shares the sweep's server).
func (b *bench) reorderLoadRows(off, on string) {
	i := slices.IndexFunc(b.rows, func(r row) bool { return r.scenario == on })
	j := slices.IndexFunc(b.rows, func(r row) bool { return r.scenario == off })
	if i >= 0 && j > i {
		b.rows[i], b.rows[j] = b.rows[j], b.rows[i]
	}
}

// clientOp gives each bench client its own oip/client Client (its own
// connection), like independent callers.
func clientOp(srv *runtimeServer, p client.Protocol, batch, clients int) newOp {
	return func(c int) (op, error) {
		url := srv.httpURL
		if p.IsGRPC() {
			url = srv.grpcAddr
		}
		cl, err := client.New(client.Config{URL: url, Protocol: p})
		if err != nil {
			return nil, fmt.Errorf("oip client for %s: %w", p, err)
		}
		srv.onStop(func() { _ = cl.Close() })
		inputs := []oip.Tensor{{
			Name: inputName, Datatype: oip.FP32,
			Shape: []int64{int64(batch), featureSize},
			Raw:   featureBytes(batch, c),
		}}
		return func(ctx context.Context) error {
			resp, err := cl.Infer(ctx, modelName, inputs)
			if err != nil {
				return err
			}
			if len(resp.Outputs) != 1 || len(resp.Outputs[0].Shape) == 0 || resp.Outputs[0].Shape[0] != int64(batch) {
				return fmt.Errorf("%s: unexpected outputs for %d rows: %s", p, batch, describeOutputs(resp.Outputs))
			}
			return nil
		}, nil
	}
}

func describeOutputs(outs []oip.Tensor) string {
	var s []string
	for _, o := range outs {
		s = append(s, fmt.Sprintf("%s %s %v", o.Name, o.Datatype, o.Shape))
	}
	return "[" + strings.Join(s, "; ") + "]"
}
