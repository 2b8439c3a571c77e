package pipeline

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func ms(n int) time.Duration { return time.Duration(n) * time.Millisecond }

func TestPercentile(t *testing.T) {
	hundred := make([]time.Duration, 100)
	for i := range hundred {
		hundred[i] = ms(i + 1) // 1ms..100ms
	}
	tests := []struct {
		name   string
		sorted []time.Duration
		p      float64
		want   time.Duration
	}{
		{"empty", nil, 50, 0},
		{"single p50", []time.Duration{ms(7)}, 50, ms(7)},
		{"single p99", []time.Duration{ms(7)}, 99, ms(7)},
		{"p50 of 1..100", hundred, 50, ms(50)},
		{"p99 of 1..100", hundred, 99, ms(99)},
		{"p100 is max", hundred, 100, ms(100)},
		{"tiny p is min", hundred, 0.001, ms(1)},
		{"p0 is undefined", hundred, 0, 0},
		{"p50 of four rounds up to an observed value", []time.Duration{ms(1), ms(2), ms(3), ms(4)}, 50, ms(2)},
		{"p99 of ten is max", []time.Duration{ms(1), ms(2), ms(3), ms(4), ms(5), ms(6), ms(7), ms(8), ms(9), ms(10)}, 99, ms(10)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, Percentile(tt.sorted, tt.p))
		})
	}
}

func TestConfusion(t *testing.T) {
	tests := []struct {
		name                  string
		pairs                 [][2]bool // flagged, truth
		precision, recall     float64
		precisionOK, recallOK bool
	}{
		{"none", nil, 0, 0, false, false},
		{"perfect", [][2]bool{{true, true}, {false, false}}, 1, 1, true, true},
		{"nothing flagged", [][2]bool{{false, true}, {false, false}}, 0, 0, false, true},
		{"no true fraud", [][2]bool{{true, false}, {false, false}}, 0, 0, true, false},
		{"mixed", [][2]bool{{true, true}, {true, true}, {true, false}, {false, true}, {false, false}}, 2.0 / 3, 2.0 / 3, true, true},
		{"half recall", [][2]bool{{true, true}, {false, true}, {false, false}}, 1, 0.5, true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c Confusion
			for _, p := range tt.pairs {
				c.Add(p[0], p[1])
			}
			assert.Equal(t, len(tt.pairs), c.TP+c.FP+c.TN+c.FN)
			p, ok := c.Precision()
			assert.Equal(t, tt.precisionOK, ok)
			assert.InDelta(t, tt.precision, p, 1e-12)
			r, ok := c.Recall()
			assert.Equal(t, tt.recallOK, ok)
			assert.InDelta(t, tt.recall, r, 1e-12)
		})
	}
}

func TestJoin(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	sent := []Sent{
		{ID: "a", Fraud: true, At: t0, Bytes: 100, Attempts: 1},
		{ID: "b", Fraud: false, At: t0.Add(ms(10)), Bytes: 110, Attempts: 3},
		{ID: "c", Fraud: true, At: t0.Add(ms(20)), Bytes: 120},
		{ID: "d", Fraud: false, At: t0.Add(ms(30)), Bytes: 130},
	}
	first := map[string]Arrival{
		"a": {ScoreResult: ScoreResult{TransactionID: "a", Score: 0.99, Fraud: true}, At: t0.Add(ms(5))},
		"b": {ScoreResult: ScoreResult{TransactionID: "b", Score: 0.97, Fraud: true}, At: t0.Add(ms(40))},
		"c": {ScoreResult: ScoreResult{TransactionID: "c", Score: 0.10, Fraud: false}, At: t0.Add(ms(35))},
		"x": {ScoreResult: ScoreResult{TransactionID: "x", Score: 0.5}, At: t0.Add(ms(50))},
	}
	o := Join(sent, first, 3)

	assert.Equal(t, 4, o.Sent)
	assert.Equal(t, 3, o.Scored)
	assert.Equal(t, 1, o.Missing)
	assert.Equal(t, 1, o.Unexpected)
	assert.Equal(t, 3, o.Duplicates)
	assert.Equal(t, 2, o.Retries, "b took two extra attempts")
	assert.Equal(t, 2, o.Flagged)
	assert.Equal(t, 2, o.TrueFraud)
	assert.Equal(t, Confusion{TP: 1, FP: 1, FN: 1}, o.Confusion)
	assert.Equal(t, int64(460), o.TransactionBytes)
	assert.Equal(t, []time.Duration{ms(5), ms(15), ms(30)}, o.Latencies)
	assert.Equal(t, []float64{0.99, 0.10}, o.FraudScores)
	assert.Equal(t, []float64{0.97}, o.LegitScores)
	require.Len(t, o.Points, 3)
	assert.Equal(t, LatencyPoint{SinceStart: ms(20), Latency: ms(15)}, o.Points[2])
	assert.Equal(t, t0, o.FirstSend)
	assert.Equal(t, t0.Add(ms(40)), o.LastArrival)
	// 3 scored over the 40ms from first send to last result.
	assert.InDelta(t, 75.0, o.Throughput(), 1e-9)
}

func TestThroughputUndefined(t *testing.T) {
	assert.Zero(t, Outcome{}.Throughput())
	t0 := time.Now()
	assert.Zero(t, Outcome{Scored: 1, FirstSend: t0, LastArrival: t0}.Throughput())
}
