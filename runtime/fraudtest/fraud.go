// Package fraudtest holds the workshop's reference transactions for the
// shipped fraud model, scaled with the shipped scaler, for tests at every
// layer of the runtime.
package fraudtest

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"

	"github.com/veil-ai/veil/models"
	"github.com/veil-ai/veil/oip"
)

// Case is one reference transaction.
type Case struct {
	Name     string
	Features []float64 // unscaled, in model order
	Score    float64   // the model's output
}

// Tolerance is the absolute tolerance on scores.
const Tolerance = 1e-6

// Cases are the workshop's named examples (../shared/fraud-model/DATA.md).
func Cases() []Case {
	return []Case{
		{"Sally", []float64{0.3111400080477545, 1.9459399775518593, 1.0, 0.0, 0.0}, 0.0050283},
		{"stolen card", []float64{100, 1.2, 0.0, 0.0, 1.0}, 0.9926471},
	}
}

// Input and output names of the shipped model.
const (
	InputName  = "dense_input"
	OutputName = "dense_3"
)

type scaler struct {
	Mean  []float64 `json:"mean_"`
	Scale []float64 `json:"scale_"`
}

// Scale applies the shipped StandardScaler: (x-mean)/scale in float64, then
// float32.
func Scale(features []float64) ([]float32, error) {
	var s scaler
	if err := json.Unmarshal(models.FraudScalerJSON, &s); err != nil {
		return nil, fmt.Errorf("parse shipped scaler: %w", err)
	}
	if len(s.Mean) != len(features) || len(s.Scale) != len(features) {
		return nil, fmt.Errorf("scaler has %d features, got %d", len(s.Mean), len(features))
	}
	out := make([]float32, len(features))
	for i, x := range features {
		out[i] = float32((x - s.Mean[i]) / s.Scale[i])
	}
	return out, nil
}

// Batch is the scaled cases as one FP32 [len(cases), 5] tensor.
func Batch(cases []Case) (oip.Tensor, error) {
	t := oip.Tensor{Name: InputName, Datatype: oip.FP32, Shape: []int64{int64(len(cases)), 5}}
	for _, c := range cases {
		x, err := Scale(c.Features)
		if err != nil {
			return t, err
		}
		for _, v := range x {
			t.Raw = binary.LittleEndian.AppendUint32(t.Raw, math.Float32bits(v))
		}
	}
	return t, nil
}

// Scores reads an FP32 output tensor.
func Scores(t oip.Tensor) []float64 {
	out := make([]float64, len(t.Raw)/4)
	for i := range out {
		out[i] = float64(math.Float32frombits(binary.LittleEndian.Uint32(t.Raw[4*i:])))
	}
	return out
}
