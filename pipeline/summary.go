package pipeline

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"
)

// Phase is one cold-start phase of the runtime.
type Phase struct {
	Name    string  `json:"phase"`
	Seconds float64 `json:"seconds"`
}

// LatencySummary is the end-to-end latency, send → result at the sink.
type LatencySummary struct {
	P50Ms  float64 `json:"p50_ms"`
	P90Ms  float64 `json:"p90_ms"`
	P99Ms  float64 `json:"p99_ms"`
	MaxMs  float64 `json:"max_ms"`
	MeanMs float64 `json:"mean_ms"`
}

// EgressSummary compares what came back out of the cloud side with what
// went in: result event bytes over transaction event bytes, both counted
// as event data at the two ends of the pipeline.
type EgressSummary struct {
	TransactionBytes int64   `json:"transaction_bytes"`
	ResultBytes      int64   `json:"result_bytes"`
	Ratio            float64 `json:"ratio"`
	// The batcher's own counts from its metrics: event bodies plus
	// CloudEvents and content-type headers, in and out.
	BatcherIngressBytes float64 `json:"batcher_ingress_bytes,omitempty"`
	BatcherEgressBytes  float64 `json:"batcher_egress_bytes,omitempty"`
}

// Summary is everything `veil run` reports, also written as JSON with
// --summary_json.
type Summary struct {
	Settings Settings `json:"settings"`

	Sent       int `json:"transactions_sent"`
	Scored     int `json:"transactions_scored"`
	Missing    int `json:"missing"`
	Duplicates int `json:"duplicate_results"`
	Retries    int `json:"send_retries"`
	Unexpected int `json:"unexpected_results"`

	Flagged   int       `json:"flagged_fraud"`
	TrueFraud int       `json:"true_fraud"`
	Confusion Confusion `json:"confusion"`
	// nil where undefined (nothing flagged / no true fraud).
	Precision *float64 `json:"precision"`
	Recall    *float64 `json:"recall"`
	Accuracy  *float64 `json:"accuracy"`

	DurationSeconds float64        `json:"duration_seconds"`
	Throughput      float64        `json:"throughput_per_second"`
	Latency         LatencySummary `json:"latency"`
	Batches         Histogram      `json:"batch_sizes"`
	Egress          EgressSummary  `json:"egress"`
	ColdStart       []Phase        `json:"cold_start"`

	// Where each piece listened during the run: all closed afterwards.
	Endpoints map[string]string `json:"endpoints"`

	Model        string `json:"model"`
	ModelVersion string `json:"model_version"`
	ReportPath   string `json:"report_path,omitempty"`
}

// Settings echo what the run was asked to do.
type Settings struct {
	Count        int     `json:"count"`
	Rate         float64 `json:"rate_per_second"`
	Seed         uint64  `json:"seed"`
	FraudRate    float64 `json:"fraud_rate"`
	MaxBatchSize int     `json:"max_batch_size"`
	MaxLatency   string  `json:"max_latency"`
	Protocol     string  `json:"protocol"`
	TEE          string  `json:"tee"`
}

func optional(v float64, ok bool) *float64 {
	if !ok {
		return nil
	}
	return &v
}

func millis(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// summarize builds the summary from the joined outcome and the sink's
// byte count.
func summarize(o Outcome, resultBytes int64) Summary {
	s := Summary{
		Sent: o.Sent, Scored: o.Scored, Missing: o.Missing,
		Duplicates: o.Duplicates, Unexpected: o.Unexpected, Retries: o.Retries,
		Flagged: o.Flagged, TrueFraud: o.TrueFraud, Confusion: o.Confusion,
		Precision:  optional(o.Confusion.Precision()),
		Recall:     optional(o.Confusion.Recall()),
		Accuracy:   optional(o.Confusion.Accuracy()),
		Throughput: o.Throughput(),
		Egress:     EgressSummary{TransactionBytes: o.TransactionBytes, ResultBytes: resultBytes},
	}
	if !o.LastArrival.IsZero() {
		s.DurationSeconds = o.LastArrival.Sub(o.FirstSend).Seconds()
	}
	if o.TransactionBytes > 0 {
		s.Egress.Ratio = float64(resultBytes) / float64(o.TransactionBytes)
	}
	if n := len(o.Latencies); n > 0 {
		var total time.Duration
		for _, l := range o.Latencies {
			total += l
		}
		s.Latency = LatencySummary{
			P50Ms:  millis(Percentile(o.Latencies, 50)),
			P90Ms:  millis(Percentile(o.Latencies, 90)),
			P99Ms:  millis(Percentile(o.Latencies, 99)),
			MaxMs:  millis(o.Latencies[n-1]),
			MeanMs: millis(total / time.Duration(n)),
		}
	}
	return s
}

// WriteJSON writes the summary to path (0644: it holds counts and timings,
// no transaction data).
func (s Summary) WriteJSON(path string) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return fmt.Errorf("encode summary: %w", err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write summary %s: %w", path, err)
	}
	return nil
}

func pct(v *float64) string {
	if v == nil {
		return "n/a"
	}
	return fmt.Sprintf("%.1f %%", *v*100)
}

// PrintTable writes the human summary table.
func (s Summary) PrintTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(k, format string, args ...any) {
		fmt.Fprintf(tw, "  %s\t"+format+"\n", append([]any{k}, args...)...)
	}
	fmt.Fprintln(tw, "Summary")
	row("transactions sent", "%d (%d sends retried after 429/5xx answers or connection errors)", s.Sent, s.Retries)
	row("transactions scored", "%d (missing %d, duplicate results %d)", s.Scored, s.Missing, s.Duplicates)
	row("flagged as fraud", "%d (true fraud %d; TP %d, FP %d, FN %d)", s.Flagged, s.TrueFraud, s.Confusion.TP, s.Confusion.FP, s.Confusion.FN)
	row("precision / recall", "%s / %s (accuracy %s, vs generator ground truth)", pct(s.Precision), pct(s.Recall), pct(s.Accuracy))
	row("throughput", "%.0f transactions/s over %.2f s", s.Throughput, s.DurationSeconds)
	row("latency end to end", "p50 %.1f ms, p99 %.1f ms (max %.1f ms)", s.Latency.P50Ms, s.Latency.P99Ms, s.Latency.MaxMs)
	if s.Batches.Count > 0 {
		row("batch sizes", "%d batches, mean %.1f rows (max_batch_size %d)", s.Batches.Count, s.Batches.Mean(), s.Settings.MaxBatchSize)
	} else {
		row("batch sizes", "n/a (no batch-size histogram in the batcher's /metrics)")
	}
	row("egress ratio", "%.3f (%s of results for %s of transactions, event data)", s.Egress.Ratio, byteSize(s.Egress.ResultBytes), byteSize(s.Egress.TransactionBytes))
	// The batcher counts replies, not K_SINK sends, as egress: only a
	// non-zero count says anything.
	if s.Egress.BatcherIngressBytes > 0 && s.Egress.BatcherEgressBytes > 0 {
		row("", "%.3f with CloudEvents headers (the batcher's own byte counters)", s.Egress.BatcherEgressBytes/s.Egress.BatcherIngressBytes)
	}
	if len(s.ColdStart) > 0 {
		parts := make([]string, 0, len(s.ColdStart))
		for _, p := range s.ColdStart {
			parts = append(parts, fmt.Sprintf("%s %.1f ms", p.Name, p.Seconds*1000))
		}
		row("cold start", "%s", strings.Join(parts, ", "))
	}
	if s.ReportPath != "" {
		row("report", "%s", s.ReportPath)
	}
	return tw.Flush()
}

func byteSize(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	default:
		return fmt.Sprintf("%d B", n)
	}
}
