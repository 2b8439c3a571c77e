package pipeline

import (
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"sort"
	"strings"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// maxMetricsBody bounds a scraped /metrics page.
const maxMetricsBody = 16 << 20

// metricFamilies is one scrape of a Prometheus text endpoint.
type metricFamilies map[string]*dto.MetricFamily

// scrapeMetrics fetches and parses a Prometheus text-format /metrics page.
func scrapeMetrics(ctx context.Context, client *http.Client, url string) (metricFamilies, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, fmt.Errorf("metrics request %s: %w", url, err)
	}
	// Ask for the classic text format: it is what the parser reads.
	req.Header.Set("Accept", "text/plain;version=0.0.4")
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("scrape %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("scrape %s: status %s", url, resp.Status)
	}
	return parseMetrics(io.LimitReader(resp.Body, maxMetricsBody))
}

func parseMetrics(r io.Reader) (metricFamilies, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(r)
	if err != nil {
		return nil, fmt.Errorf("parse metrics: %w", err)
	}
	return mfs, nil
}

// Bucket is one histogram bucket, not cumulative: Count observations were
// above the previous bucket's bound and at most UpperBound.
type Bucket struct {
	UpperBound float64 `json:"le"`
	Count      uint64  `json:"count"`
}

// Histogram is a Prometheus histogram summed over its label sets.
type Histogram struct {
	Name    string   `json:"metric"`
	Count   uint64   `json:"count"`
	Sum     float64  `json:"sum"`
	Buckets []Bucket `json:"buckets,omitempty"`
	// Above counts observations beyond the last finite bound (the +Inf
	// bucket, kept apart because JSON has no infinity).
	Above uint64 `json:"above_last_bucket"`
}

// Mean is Sum/Count, 0 when empty.
func (h Histogram) Mean() float64 {
	if h.Count == 0 {
		return 0
	}
	return h.Sum / float64(h.Count)
}

// histogram returns the first histogram (by sorted name) whose name
// satisfies match, summed over all its series.
func (mfs metricFamilies) histogram(match func(name string) bool) (Histogram, bool) {
	names := make([]string, 0, len(mfs))
	for n := range mfs {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		mf := mfs[n]
		if mf.GetType() != dto.MetricType_HISTOGRAM || !match(n) {
			continue
		}
		return sumHistogram(n, mf), true
	}
	return Histogram{}, false
}

func sumHistogram(name string, mf *dto.MetricFamily) Histogram {
	h := Histogram{Name: name}
	cum := map[float64]uint64{}
	for _, m := range mf.GetMetric() {
		mh := m.GetHistogram()
		h.Count += mh.GetSampleCount()
		h.Sum += mh.GetSampleSum()
		for _, b := range mh.GetBucket() {
			if math.IsInf(b.GetUpperBound(), 1) {
				continue
			}
			cum[b.GetUpperBound()] += b.GetCumulativeCount()
		}
	}
	bounds := make([]float64, 0, len(cum))
	for b := range cum {
		bounds = append(bounds, b)
	}
	sort.Float64s(bounds)
	var prev uint64
	for _, b := range bounds {
		c := cum[b]
		if c < prev { // inconsistent series; never report negative counts
			c = prev
		}
		h.Buckets = append(h.Buckets, Bucket{UpperBound: b, Count: c - prev})
		prev = c
	}
	if h.Count > prev {
		h.Above = h.Count - prev
	}
	return h
}

// counterSum adds every series of the counters or gauges whose names satisfy
// match.
func (mfs metricFamilies) counterSum(match func(name string) bool) (float64, bool) {
	var total float64
	found := false
	for n, mf := range mfs {
		if !match(n) {
			continue
		}
		for _, m := range mf.GetMetric() {
			switch mf.GetType() {
			case dto.MetricType_COUNTER:
				total += m.GetCounter().GetValue()
				found = true
			case dto.MetricType_GAUGE:
				total += m.GetGauge().GetValue()
				found = true
			}
		}
	}
	return total, found
}

func nameHas(parts ...string) func(string) bool {
	return func(n string) bool {
		for _, p := range parts {
			if !strings.Contains(n, p) {
				return false
			}
		}
		return true
	}
}
