package pipeline

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// fraudThreshold is the batcher's default: fraud = score > 0.95.
const fraudThreshold = 0.95

// batcherFigures fills in batch sizes and the batcher's own byte counts.
func (r *run) batcherFigures(ctx context.Context, url string, s *Summary) error {
	mfs, err := scrapeMetrics(ctx, r.http, url)
	if err != nil {
		return err
	}
	if h, ok := mfs.histogram(nameHas(metricBatchRows)); ok {
		s.Batches = h
	}
	if v, ok := mfs.counterSum(nameHas(metricBatcherIngress)); ok {
		s.Egress.BatcherIngressBytes = v
	}
	if v, ok := mfs.counterSum(nameHas(metricBatcherEgress)); ok {
		s.Egress.BatcherEgressBytes = v
	}
	return nil
}

// Metric names of the batcher (functions/receiver) and the runtime
// (runtime/coldstart); kept here so that pipeline depends on neither.
const (
	metricBatchRows      = "veil_batcher_batch_rows"
	metricBatcherIngress = "veil_batcher_ingress_bytes_total"
	metricBatcherEgress  = "veil_batcher_egress_bytes_total"
	metricColdStartLast  = "veil_coldstart_last_phase_seconds"
)

// coldStartPhases is the order in which the runtime's phases happen.
var coldStartPhases = []string{"evidence", "attest", "fetch", "decrypt", "session", "total"}

// coldStart reads the latest cold start's phases from the runtime's metrics.
func (r *run) coldStart(ctx context.Context, rt runtimeEndpoints) ([]Phase, error) {
	mfs, err := scrapeMetrics(ctx, r.http, rt.httpURL+"/metrics")
	if err != nil {
		return nil, err
	}
	mf, ok := mfs[metricColdStartLast]
	if !ok {
		return nil, fmt.Errorf("runtime metrics have no %s", metricColdStartLast)
	}
	byPhase := map[string]float64{}
	for _, m := range mf.GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == "phase" {
				byPhase[l.GetValue()] = m.GetGauge().GetValue()
			}
		}
	}
	var out []Phase
	for _, name := range coldStartPhases {
		if v, ok := byPhase[name]; ok {
			out = append(out, Phase{Name: name, Seconds: v})
		}
	}
	return out, nil
}

func formatPhases(phases []Phase) string {
	parts := make([]string, 0, len(phases))
	for _, p := range phases {
		parts = append(parts, fmt.Sprintf("%s %s", p.Name, round(time.Duration(p.Seconds*float64(time.Second)))))
	}
	return strings.Join(parts, ", ")
}
