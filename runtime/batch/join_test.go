package batch

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/veil-ai/veil/oip"
)

func TestSignature(t *testing.T) {
	x := func(shape ...int64) oip.Tensor {
		n, err := oip.ElementCount(shape)
		require.NoError(t, err)
		return oip.Tensor{Name: "x", Datatype: oip.FP32, Shape: shape, Raw: make([]byte, 4*n)}
	}
	base := x(2, 5)
	tests := []struct {
		name     string
		inputs   []oip.Tensor
		joinable bool
		rows     int64
		sameAs   []oip.Tensor // when set, must share (or not) base's key
		sameKey  bool
	}{
		{name: "rows differ, same key", inputs: []oip.Tensor{x(7, 5)}, joinable: true, rows: 7, sameAs: []oip.Tensor{base}, sameKey: true},
		{name: "trailing dim differs", inputs: []oip.Tensor{x(2, 4)}, joinable: true, rows: 2, sameAs: []oip.Tensor{base}},
		{name: "rank differs", inputs: []oip.Tensor{x(2, 5, 1)}, joinable: true, rows: 2, sameAs: []oip.Tensor{base}},
		{name: "datatype differs", inputs: []oip.Tensor{{Name: "x", Datatype: oip.Int32, Shape: []int64{2, 5}, Raw: make([]byte, 40)}}, joinable: true, rows: 2, sameAs: []oip.Tensor{base}},
		{name: "name differs", inputs: []oip.Tensor{{Name: "y", Datatype: oip.FP32, Shape: []int64{2, 5}, Raw: make([]byte, 40)}}, joinable: true, rows: 2, sameAs: []oip.Tensor{base}},
		{name: "two inputs agreeing on rows", inputs: []oip.Tensor{x(3, 5), x(3, 1)}, joinable: true, rows: 3},
		{name: "no inputs"},
		{name: "scalar input", inputs: []oip.Tensor{x()}},
		{name: "zero rows", inputs: []oip.Tensor{x(0, 5)}},
		{name: "inputs disagree on rows", inputs: []oip.Tensor{x(3, 5), x(2, 1)}},
		{name: "data too short", inputs: []oip.Tensor{{Name: "x", Datatype: oip.FP32, Shape: []int64{2, 5}, Raw: make([]byte, 39)}}},
		{name: "unknown datatype", inputs: []oip.Tensor{{Name: "x", Datatype: "FP8", Shape: []int64{1}, Raw: make([]byte, 1)}}},
	}
	_, baseKey, ok := signature([]oip.Tensor{base})
	require.True(t, ok)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rows, key, ok := signature(tt.inputs)
			require.Equal(t, tt.joinable, ok)
			if !ok {
				return
			}
			assert.Equal(t, tt.rows, rows)
			if tt.sameAs != nil {
				assert.Equal(t, tt.sameKey, key == baseKey, "key %q vs %q", key, baseKey)
			}
		})
	}
}

func TestJoinAndSplitRoundTrip(t *testing.T) {
	mk := func(rows int64, fill byte, strs ...string) *call {
		raw := make([]byte, rows*2*4)
		for i := range raw {
			raw[i] = fill + byte(i)
		}
		s := oip.Tensor{Name: "s", Datatype: oip.Bytes, Shape: []int64{rows}}
		for _, v := range strs {
			s.Strings = append(s.Strings, []byte(v))
		}
		return &call{rows: rows, inputs: []oip.Tensor{
			{Name: "x", Datatype: oip.FP32, Shape: []int64{rows, 2}, Raw: raw, Parameters: oip.Parameters{"binary_data_size": 8}},
			s,
		}}
	}
	calls := []*call{mk(1, 10, "a"), mk(3, 50, "b", "c", "d"), mk(2, 200, "e", "f")}
	var pool bufferPool
	joined, release := join(&pool, calls, 6)
	defer release()

	require.Len(t, joined, 2)
	assert.Equal(t, []int64{6, 2}, joined[0].Shape)
	assert.Nil(t, joined[0].Parameters, "wire parameters stay with each request")
	require.NoError(t, joined[0].Validate())
	require.NoError(t, joined[1].Validate())
	var want []byte
	for _, c := range calls {
		want = append(want, c.inputs[0].Raw...)
	}
	assert.Equal(t, want, joined[0].Raw)

	// Splitting the joined inputs as if they were outputs must give every
	// call back exactly what it sent.
	parts, err := split(joined, calls, 6)
	require.NoError(t, err)
	for i, c := range calls {
		assert.Equal(t, c.inputs[0].Raw, parts[i][0].Raw)
		assert.Equal(t, c.inputs[0].Shape, parts[i][0].Shape)
		assert.Equal(t, c.inputs[1].Strings, parts[i][1].Strings)
		assert.Equal(t, cap(parts[i][0].Raw), len(parts[i][0].Raw), "a part must not reach into its neighbour")
	}
}

func TestSplitRejectsUnalignedOutputs(t *testing.T) {
	calls := []*call{{rows: 1}, {rows: 2}}
	for _, out := range []oip.Tensor{
		{Name: "scalar", Datatype: oip.FP32, Shape: nil, Raw: make([]byte, 4)},
		{Name: "fixed", Datatype: oip.FP32, Shape: []int64{1}, Raw: make([]byte, 4)},
		{Name: "ragged", Datatype: oip.FP32, Shape: []int64{3}, Raw: make([]byte, 10)},
	} {
		_, err := split([]oip.Tensor{out}, calls, 3)
		require.ErrorIs(t, err, errUnsplittable, out.Name)
	}
}

func TestBufferPool(t *testing.T) {
	var p bufferPool
	b := p.get(100)
	assert.Len(t, *b, 100)
	p.put(b)
	big := p.get(200)
	assert.Len(t, *big, 200, "a pooled buffer too small is never handed out")
	huge := p.get(maxPooledBuffer + 1)
	p.put(huge) // dropped, not kept
	assert.GreaterOrEqual(t, cap(*p.get(10)), 10)
}
