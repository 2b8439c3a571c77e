package oip

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestTypedHelpers(t *testing.T) {
	f32 := FP32Tensor("a", []int64{1, 3}, []float32{0.5, -2, 3e38})
	got32, err := f32.Float32s()
	require.NoError(t, err)
	assert.Equal(t, []float32{0.5, -2, 3e38}, got32)

	f64 := FP64Tensor("b", []int64{2}, []float64{0.1, -1e300})
	got64, err := f64.Float64s()
	require.NoError(t, err)
	assert.Equal(t, []float64{0.1, -1e300}, got64)

	i64 := Int64Tensor("c", []int64{2}, []int64{-1, 1 << 62})
	goti, err := i64.Int64s()
	require.NoError(t, err)
	assert.Equal(t, []int64{-1, 1 << 62}, goti)

	_, err = f32.Float64s()
	assert.ErrorContains(t, err, "is FP32, not FP64")
	bad := FP32Tensor("d", []int64{2}, []float32{1})
	_, err = bad.Float32s()
	assert.ErrorIs(t, err, ErrShape)
}
