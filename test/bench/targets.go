package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/veil-ai/veil/oip/client"
)

// The targets, checked against this run's rows (never in tests).

type targetCheck struct {
	name     string
	measured string
	met      bool
	known    bool // false when a row it needs was not measured
}

func (b *bench) find(scenario string, batch int) *row {
	for i := range b.rows {
		if r := &b.rows[i]; r.scenario == scenario && r.batch == batch && r.err == nil {
			return r
		}
	}
	return nil
}

func (b *bench) checkTargets() []targetCheck {
	var out []targetCheck
	ratioTarget := func(p client.Protocol, batch int, want float64) targetCheck {
		t := targetCheck{name: fmt.Sprintf("%s, batch %d ≥ %.1f × raw onnxruntime rows/s", protocolLabel(p), batch, want)}
		r := b.find(protocolLabel(p), batch)
		if r == nil || r.ratio == 0 {
			t.measured = "not measured"
			return t
		}
		t.known, t.met = true, r.ratio >= want
		t.measured = fmt.Sprintf("%.2f × (%s vs %s rows/s)", r.ratio, humanRate(r.res.rows), humanRate(b.raw[batch]))
		if raw := b.find(scenarioRaw, batch); raw != nil && raw.res.rowsPerCore() > 0 && r.res.rowsPerCore() > 0 {
			t.measured += fmt.Sprintf("; per server core %.2f ×", r.res.rowsPerCore()/raw.res.rowsPerCore())
		}
		return t
	}
	out = append(out,
		ratioTarget(client.RESTJSON, 256, 0.5),
		ratioTarget(client.GRPCRaw, 256, 0.8),
		ratioTarget(client.RESTBinary, 256, 0.8),
	)

	lat := targetCheck{name: "Single-row REST JSON p50 ≤ 1.5 × (bare net/http p50 + raw onnxruntime batch-1 p50)"}
	rest, floor, raw := b.find(protocolLabel(client.RESTJSON), 1), b.find(scenarioFloor, 1), b.find(scenarioRaw, 1)
	if rest == nil || floor == nil || raw == nil {
		lat.measured = "not measured"
	} else {
		bound := time.Duration(1.5 * float64(floor.res.p50+raw.res.p50))
		lat.known, lat.met = true, rest.res.p50 <= bound
		lat.measured = fmt.Sprintf("%s vs bound %s (%.2f × the sum)", humanDuration(rest.res.p50), humanDuration(bound),
			float64(rest.res.p50)/float64(floor.res.p50+raw.res.p50))
	}
	out = append(out, lat)

	proto := client.Protocol(b.cfg.loadProtocol)
	batching := targetCheck{name: "Batching on ≥ 3 × concurrent single-row rows/s with batching off"}
	on := b.find(loadScenario(proto, b.cfg.loadClients, true), 1)
	off := b.find(loadScenario(proto, b.cfg.loadClients, false), 1)
	if on == nil || off == nil || off.res.rows == 0 {
		batching.measured = "not measured"
	} else {
		g := on.res.rows / off.res.rows
		batching.known, batching.met = true, g >= 3
		batching.measured = fmt.Sprintf("%.2f × (%s vs %s rows/s)", g, humanRate(on.res.rows), humanRate(off.res.rows))
		if on.res.rowsPerCore() > 0 && off.res.rowsPerCore() > 0 {
			batching.measured += fmt.Sprintf("; per server core %.2f ×", on.res.rowsPerCore()/off.res.rowsPerCore())
		}
	}
	out = append(out, batching)
	return out
}

func renderTargets(checks []targetCheck) string {
	var b strings.Builder
	b.WriteString("| Target | Measured | Met? |\n|---|---|---|\n")
	for _, c := range checks {
		verdict := "?"
		if c.known {
			verdict = "no"
			if c.met {
				verdict = "yes"
			}
		}
		fmt.Fprintf(&b, "| %s | %s | %s |\n", c.name, c.measured, verdict)
	}
	return b.String()
}
