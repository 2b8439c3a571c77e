package receiver

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the receiver's Prometheus series, registered on a registry
// the caller owns (no global registry).
type Metrics struct {
	EventsIn       *prometheus.CounterVec
	EventsIgnored  prometheus.Counter
	ResultsOut     *prometheus.CounterVec
	Dropped        *prometheus.CounterVec
	DedupHits      prometheus.Counter
	RowsScored     prometheus.Counter
	BatchRows      prometheus.Histogram
	RuntimeLatency *prometheus.HistogramVec
	BytesIn        prometheus.Counter
	BytesOut       prometheus.Counter
}

// Metric names, for dashboards and tests.
const (
	MetricEventsIn       = "veil_batcher_events_received_total"
	MetricEventsIgnored  = "veil_batcher_events_ignored_total"
	MetricResultsOut     = "veil_batcher_results_sent_total"
	MetricDropped        = "veil_batcher_events_dropped_total"
	MetricDedupHits      = "veil_batcher_dedup_hits_total"
	MetricRowsScored     = "veil_batcher_rows_scored_total"
	MetricBatchRows      = "veil_batcher_batch_rows"
	MetricRuntimeLatency = "veil_batcher_runtime_request_seconds"
	MetricBytesIn        = "veil_batcher_ingress_bytes_total"
	MetricBytesOut       = "veil_batcher_egress_bytes_total"
)

// NewMetrics creates the series and registers them on reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		EventsIn: prometheus.NewCounterVec(prometheus.CounterOpts{Name: MetricEventsIn,
			Help: "CloudEvents received, by content mode (binary, structured, batched) and kind (transaction, other, invalid)."},
			[]string{"mode", "kind"}),
		EventsIgnored: prometheus.NewCounter(prometheus.CounterOpts{Name: MetricEventsIgnored,
			Help: "Valid CloudEvents of another type, acknowledged and ignored."}),
		ResultsOut: prometheus.NewCounterVec(prometheus.CounterOpts{Name: MetricResultsOut,
			Help: "Score result events sent, by path (reply, sink, sink_batch)."}, []string{"path"}),
		Dropped: prometheus.NewCounterVec(prometheus.CounterOpts{Name: MetricDropped,
			Help: "Transactions not scored, by reason; retryable reasons are answered 429/5xx so the sender redelivers."},
			[]string{"reason"}),
		DedupHits: prometheus.NewCounter(prometheus.CounterOpts{Name: MetricDedupHits,
			Help: "Transactions answered from the (source, id) cache or joined to an identical one in flight."}),
		RowsScored: prometheus.NewCounter(prometheus.CounterOpts{Name: MetricRowsScored,
			Help: "Rows the runtime scored successfully."}),
		BatchRows: prometheus.NewHistogram(prometheus.HistogramOpts{Name: MetricBatchRows,
			Help: "Rows per runtime request.", Buckets: prometheus.ExponentialBuckets(1, 2, 12)}),
		RuntimeLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: MetricRuntimeLatency,
			Help: "Runtime inference request latency, by outcome (ok, error).", Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16)},
			[]string{"outcome"}),
		BytesIn: prometheus.NewCounter(prometheus.CounterOpts{Name: MetricBytesIn,
			Help: "Bytes of incoming events (body plus CloudEvents and content-type headers)."}),
		BytesOut: prometheus.NewCounter(prometheus.CounterOpts{Name: MetricBytesOut,
			Help: "Bytes of result events sent (body plus CloudEvents and content-type headers); egress ratio = egress / ingress."}),
	}
	for _, c := range []prometheus.Collector{m.EventsIn, m.EventsIgnored, m.ResultsOut, m.Dropped, m.DedupHits,
		m.RowsScored, m.BatchRows, m.RuntimeLatency, m.BytesIn, m.BytesOut} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// ObserveBatch records one runtime request; it fits batcher.Observer.
func (m *Metrics) ObserveBatch(rows int, took float64, err error) {
	m.BatchRows.Observe(float64(rows))
	outcome := "ok"
	if err != nil {
		outcome = "error"
	} else {
		m.RowsScored.Add(float64(rows))
	}
	m.RuntimeLatency.WithLabelValues(outcome).Observe(took)
}
