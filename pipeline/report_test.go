package pipeline

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func syntheticReport(n int) ReportData {
	r := rand.New(rand.NewPCG(1, 2))
	d := ReportData{Threshold: 0.95, Generated: time.Date(2026, 12, 4, 20, 0, 0, 0, time.UTC)}
	for i := range n {
		d.Points = append(d.Points, LatencyPoint{
			SinceStart: time.Duration(i) * time.Millisecond,
			Latency:    time.Duration(5+r.IntN(20)) * time.Millisecond,
		})
		if i%12 == 0 {
			d.FraudScores = append(d.FraudScores, 0.8+0.2*r.Float64())
		} else {
			d.LegitScores = append(d.LegitScores, 0.3*r.Float64())
		}
	}
	d.Summary = Summary{
		Settings: Settings{Count: n, Seed: 42, Protocol: "grpc-raw", MaxBatchSize: 64},
		Sent:     n, Scored: n, Model: "fraud", ModelVersion: "1",
		Batches: Histogram{Count: 30, Sum: 900, Buckets: []Bucket{{1, 3}, {8, 7}, {64, 20}, {128, 0}}},
	}
	return d
}

func TestRenderReport(t *testing.T) {
	tests := []struct {
		name string
		data ReportData
	}{
		{"synthetic run", syntheticReport(5000)},
		{"empty run", ReportData{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			html, err := RenderReport(tt.data)
			require.NoError(t, err)
			s := string(html)
			assert.True(t, strings.HasPrefix(s, "<!doctype html>"))
			assert.Equal(t, 3, strings.Count(s, "<svg"), "three inline plots")
			assert.Equal(t, 3, strings.Count(s, "</svg>"))
			assert.NotContains(t, s, "<?xml", "prolog stripped for inline SVG")
			// Self-contained: nothing loaded from elsewhere.
			for _, bad := range []string{"<script", "src=", "<link", "@import"} {
				assert.NotContains(t, s, bad)
			}
			assert.Contains(t, s, "DEVELOPMENT ONLY")
			assert.Contains(t, s, "transactions sent")
		})
	}
}

func TestRenderReportPlotsData(t *testing.T) {
	d := syntheticReport(2000)
	html, err := RenderReport(d)
	require.NoError(t, err)
	s := string(html)
	assert.Contains(t, s, "legit (1833)")
	assert.Contains(t, s, "fraud (167)")
	assert.Contains(t, s, "p99 per window")
	// Bucket labels of the batch-size bars.
	for _, label := range []string{">1<", ">2–8<", ">9–64<"} {
		assert.Contains(t, s, label)
	}
	assert.NotContains(t, s, ">65–128<", "empty buckets past the largest batch are not drawn")
}

func TestWriteReportCreatesDirectory(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nested", "report.html")
	require.NoError(t, WriteReport(path, syntheticReport(100)))
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Contains(t, string(b), "</html>")
}

func TestWindowPercentiles(t *testing.T) {
	var pts []LatencyPoint
	// Two seconds; the second second is slower.
	for i := range 2000 {
		lat := 10 * time.Millisecond
		if i >= 1000 {
			lat = 30 * time.Millisecond
		}
		pts = append(pts, LatencyPoint{SinceStart: time.Duration(i) * time.Millisecond, Latency: lat})
	}
	p50, p99 := windowPercentiles(pts, 4)
	require.Len(t, p50, 4)
	require.Len(t, p99, 4)
	assert.Equal(t, 10.0, p50[0].Y)
	assert.Equal(t, 30.0, p50[3].Y)
	assert.Less(t, p50[0].X, p50[3].X)

	a, b := windowPercentiles(nil, 4)
	assert.Nil(t, a)
	assert.Nil(t, b)
}

func TestScoreFractions(t *testing.T) {
	got := scoreFractions([]float64{0, 0.04, 0.5, 0.99, 1.0}, 10)
	require.Len(t, got, 10)
	assert.InDelta(t, 0.4, got[0], 1e-12)
	assert.InDelta(t, 0.2, got[5], 1e-12)
	assert.InDelta(t, 0.4, got[9], 1e-12, "score 1.0 lands in the last bin")
	var sum float64
	for _, v := range got {
		sum += v
	}
	assert.InDelta(t, 1, sum, 1e-12)
	assert.Equal(t, 10, len(scoreFractions(nil, 10)))
}
