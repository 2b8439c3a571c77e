package oipscore

import (
	"encoding/binary"
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/veil-ai/veil/oip"
)

func tensor(name string, dt oip.DataType, shape []int64, vals ...float64) oip.Tensor {
	t := oip.Tensor{Name: name, Datatype: dt, Shape: shape}
	for _, v := range vals {
		switch dt {
		case oip.FP64:
			t.Raw = binary.LittleEndian.AppendUint64(t.Raw, math.Float64bits(v))
		default:
			t.Raw = binary.LittleEndian.AppendUint32(t.Raw, math.Float32bits(float32(v)))
		}
	}
	return t
}

func TestScores(t *testing.T) {
	tests := []struct {
		name    string
		output  string
		outs    []oip.Tensor
		want    []float32
		wantErr string
	}{
		{"fp32 [n,1]", "", []oip.Tensor{tensor("dense_3", oip.FP32, []int64{2, 1}, 0.25, 0.5)}, []float32{0.25, 0.5}, ""},
		{"fp32 [n]", "", []oip.Tensor{tensor("y", oip.FP32, []int64{2}, 1, 0)}, []float32{1, 0}, ""},
		{"fp64", "", []oip.Tensor{tensor("y", oip.FP64, []int64{2, 1}, 0.125, 0.75)}, []float32{0.125, 0.75}, ""},
		{"named output", "b", []oip.Tensor{tensor("a", oip.FP32, []int64{2, 1}, 9, 9), tensor("b", oip.FP32, []int64{2, 1}, 0.1, 0.2)}, []float32{0.1, 0.2}, ""},
		{"missing output", "c", []oip.Tensor{tensor("a", oip.FP32, []int64{2, 1}, 9, 9)}, nil, `no output "c"`},
		{"wrong rows", "", []oip.Tensor{tensor("y", oip.FP32, []int64{3, 1}, 1, 2, 3)}, nil, "want [2] or [2,1]"},
		{"two per row", "", []oip.Tensor{tensor("y", oip.FP32, []int64{2, 2}, 1, 2, 3, 4)}, nil, "want [2] or [2,1]"},
		{"int output", "", []oip.Tensor{{Name: "y", Datatype: oip.Int64, Shape: []int64{2}, Raw: make([]byte, 16)}}, nil, "want FP32 or FP64"},
		{"short data", "", []oip.Tensor{{Name: "y", Datatype: oip.FP32, Shape: []int64{2}, Raw: make([]byte, 4)}}, nil, "4 bytes for 2 FP32"},
		{"no outputs", "", nil, nil, "no output"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := &Inferer{cfg: Config{Model: "fraud", InputName: "x", OutputName: tc.output}}
			got, err := s.scores(&oip.InferResponse{Outputs: tc.outs}, 2)
			if tc.wantErr != "" {
				assert.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestNewChecks(t *testing.T) {
	_, err := New(Config{Model: "fraud"}, nil)
	assert.ErrorContains(t, err, "input names are required")
	_, err = New(Config{Model: "fraud", InputName: "x"}, nil)
	assert.ErrorContains(t, err, "nil client")
}
