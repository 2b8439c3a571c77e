package pipeline

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const sampleMetrics = `# HELP veil_batcher_batch_size Rows per batch.
# TYPE veil_batcher_batch_size histogram
veil_batcher_batch_size_bucket{protocol="grpc",le="1"} 2
veil_batcher_batch_size_bucket{protocol="grpc",le="8"} 5
veil_batcher_batch_size_bucket{protocol="grpc",le="64"} 9
veil_batcher_batch_size_bucket{protocol="grpc",le="+Inf"} 10
veil_batcher_batch_size_sum{protocol="grpc"} 300
veil_batcher_batch_size_count{protocol="grpc"} 10
veil_batcher_batch_size_bucket{protocol="rest",le="1"} 0
veil_batcher_batch_size_bucket{protocol="rest",le="8"} 1
veil_batcher_batch_size_bucket{protocol="rest",le="64"} 2
veil_batcher_batch_size_bucket{protocol="rest",le="+Inf"} 2
veil_batcher_batch_size_sum{protocol="rest"} 60
veil_batcher_batch_size_count{protocol="rest"} 2
# TYPE veil_batcher_bytes_total counter
veil_batcher_bytes_total{direction="in"} 1000
veil_batcher_bytes_total{direction="out"} 24
# TYPE veil_up gauge
veil_up 1
`

func TestHistogramSumsSeries(t *testing.T) {
	mfs, err := parseMetrics(strings.NewReader(sampleMetrics))
	require.NoError(t, err)
	h, ok := mfs.histogram(nameHas("batch_size"))
	require.True(t, ok)
	assert.Equal(t, "veil_batcher_batch_size", h.Name)
	assert.Equal(t, uint64(12), h.Count)
	assert.Equal(t, 360.0, h.Sum)
	assert.Equal(t, 30.0, h.Mean())
	assert.Equal(t, []Bucket{{1, 2}, {8, 4}, {64, 5}}, h.Buckets)
	assert.Equal(t, uint64(1), h.Above)

	_, ok = mfs.histogram(nameHas("latency"))
	assert.False(t, ok)
}

func TestCounterSum(t *testing.T) {
	mfs, err := parseMetrics(strings.NewReader(sampleMetrics))
	require.NoError(t, err)
	tests := []struct {
		name  string
		match func(string) bool
		want  float64
		found bool
	}{
		{"counter over labels", nameHas("bytes_total"), 1024, true},
		{"gauge", nameHas("veil_up"), 1, true},
		{"histogram is not a counter", nameHas("batch_size"), 0, false},
		{"absent", nameHas("nope"), 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, found := mfs.counterSum(tt.match)
			assert.Equal(t, tt.found, found)
			assert.Equal(t, tt.want, v)
		})
	}
}

func TestParseMetricsRejectsGarbage(t *testing.T) {
	_, err := parseMetrics(strings.NewReader("# TYPE x counter\nx{ 1\n"))
	assert.Error(t, err)
}

func TestHistogramMeanEmpty(t *testing.T) {
	assert.Zero(t, Histogram{}.Mean())
}
