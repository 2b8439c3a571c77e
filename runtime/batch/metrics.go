package batch

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are one Batcher's Prometheus collectors, labelled with its model.
type metrics struct {
	rows      prometheus.Histogram
	calls     prometheus.Histogram
	queueWait prometheus.Histogram
	fallbacks prometheus.Counter
}

func newMetrics(model string, reg prometheus.Registerer) (*metrics, error) {
	labels := prometheus.Labels{"model": model}
	m := &metrics{
		rows: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:        "veil_batch_size_rows",
			Help:        "Rows in each engine run made by the batcher (requests run alone included).",
			ConstLabels: labels,
			Buckets:     prometheus.ExponentialBuckets(1, 2, 12), // 1 .. 2048
		}),
		calls: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:        "veil_batch_size_requests",
			Help:        "Requests joined into each engine run made by the batcher.",
			ConstLabels: labels,
			Buckets:     prometheus.ExponentialBuckets(1, 2, 9), // 1 .. 256
		}),
		queueWait: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:        "veil_batch_queue_wait_seconds",
			Help:        "Time a request waited in the batch queue before its run started.",
			ConstLabels: labels,
			Buckets:     prometheus.ExponentialBuckets(1e-6, 4, 11), // 1µs .. ~1s
		}),
		fallbacks: prometheus.NewCounter(prometheus.CounterOpts{
			Name:        "veil_batch_fallback_runs_total",
			Help:        "Joined runs that failed or could not be split and were re-run request by request.",
			ConstLabels: labels,
		}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.rows, m.calls, m.queueWait, m.fallbacks} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register batch metrics for model %q: %w", model, err)
		}
	}
	return m, nil
}
