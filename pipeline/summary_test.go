package pipeline

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestSummarize(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	sent := []Sent{
		{ID: "a", Fraud: true, At: t0, Bytes: 200},
		{ID: "b", At: t0.Add(ms(10)), Bytes: 200},
		{ID: "c", At: t0.Add(ms(20)), Bytes: 200},
		{ID: "d", At: t0.Add(ms(30)), Bytes: 200},
	}
	first := map[string]Arrival{
		"a": {ScoreResult: ScoreResult{TransactionID: "a", Score: 0.99, Fraud: true}, At: t0.Add(ms(10))},
		"b": {ScoreResult: ScoreResult{TransactionID: "b", Score: 0.01}, At: t0.Add(ms(30))},
		"c": {ScoreResult: ScoreResult{TransactionID: "c", Score: 0.02}, At: t0.Add(ms(50))},
		"d": {ScoreResult: ScoreResult{TransactionID: "d", Score: 0.03}, At: t0.Add(ms(70))},
	}
	s := summarize(Join(sent, first, 0), 320)

	assert.Equal(t, 4, s.Sent)
	assert.Equal(t, 4, s.Scored)
	assert.Equal(t, 1, s.Flagged)
	require.NotNil(t, s.Precision)
	require.NotNil(t, s.Recall)
	assert.Equal(t, 1.0, *s.Precision)
	assert.Equal(t, 1.0, *s.Recall)
	assert.Equal(t, int64(800), s.Egress.TransactionBytes)
	assert.Equal(t, int64(320), s.Egress.ResultBytes)
	assert.InDelta(t, 0.4, s.Egress.Ratio, 1e-12)
	// Latencies 10, 20, 30, 40 ms.
	assert.Equal(t, 20.0, s.Latency.P50Ms)
	assert.Equal(t, 40.0, s.Latency.P99Ms)
	assert.Equal(t, 40.0, s.Latency.MaxMs)
	assert.Equal(t, 25.0, s.Latency.MeanMs)
	assert.InDelta(t, 0.070, s.DurationSeconds, 1e-12)
	assert.InDelta(t, 4/0.070, s.Throughput, 1e-9)
}

func TestSummarizeUndefinedRatios(t *testing.T) {
	t0 := time.Now()
	sent := []Sent{{ID: "a", At: t0, Bytes: 10}}
	first := map[string]Arrival{"a": {ScoreResult: ScoreResult{TransactionID: "a", Score: 0.1}, At: t0.Add(ms(1))}}
	s := summarize(Join(sent, first, 0), 5)
	assert.Nil(t, s.Precision, "nothing flagged")
	assert.Nil(t, s.Recall, "no true fraud")
	require.NotNil(t, s.Accuracy)
	assert.Equal(t, 1.0, *s.Accuracy)

	var table strings.Builder
	require.NoError(t, s.PrintTable(&table))
	assert.Contains(t, table.String(), "n/a / n/a")

	path := filepath.Join(t.TempDir(), "s.json")
	require.NoError(t, s.WriteJSON(path))
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	var raw map[string]any
	require.NoError(t, json.Unmarshal(b, &raw))
	assert.Nil(t, raw["precision"], "undefined precision is null, not 0")
	assert.Equal(t, 1.0, raw["transactions_scored"])
}

func TestPrintTable(t *testing.T) {
	p, r := 0.5, 0.25
	s := Summary{
		Sent: 10, Retries: 4, Scored: 9, Missing: 1, Flagged: 2, TrueFraud: 4, Precision: &p, Recall: &r,
		Confusion:  Confusion{TP: 1, FP: 1, FN: 3, TN: 4},
		Throughput: 123.4, DurationSeconds: 0.08,
		Latency:    LatencySummary{P50Ms: 1.5, P99Ms: 9.25, MaxMs: 10},
		Batches:    Histogram{Count: 3, Sum: 9},
		Egress:     EgressSummary{TransactionBytes: 2048, ResultBytes: 512, Ratio: 0.25, BatcherIngressBytes: 4000, BatcherEgressBytes: 1000},
		ColdStart:  []Phase{{"attest", 0.002}, {"total", 0.05}},
		Settings:   Settings{MaxBatchSize: 64},
		ReportPath: "/x/report.html",
	}
	var b strings.Builder
	require.NoError(t, s.PrintTable(&b))
	out := b.String()
	for _, want := range []string{
		"transactions sent    10 (4 sends retried",
		"transactions scored  9 (missing 1",
		"50.0 % / 25.0 %",
		"123 transactions/s",
		"p50 1.5 ms, p99 9.2 ms",
		"3 batches, mean 3.0 rows",
		"0.250 (512 B of results for 2.0 KiB of transactions",
		"0.250 with CloudEvents headers",
		"attest 2.0 ms, total 50.0 ms",
		"/x/report.html",
	} {
		assert.Contains(t, out, want)
	}
}
