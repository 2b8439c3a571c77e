package onnx

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	ort "github.com/yalue/onnxruntime_go"

	"github.com/veil-ai/veil/models"
	"github.com/veil-ai/veil/runtime/internal/onnxtest"
)

// The graph reader must agree with onnxruntime on every model we have.
func TestGraphIOMatchesOnnxruntime(t *testing.T) {
	inputs := map[string][]byte{"fraud": models.FraudONNX, "identity fp16": onnxtest.Identity(onnxtest.Float16, -1, 3), "identity string": onnxtest.Identity(onnxtest.String, 2)}
	paths, err := filepath.Glob(filepath.Join("..", "..", "models", "variants", "*", "1", "model.onnx"))
	require.NoError(t, err)
	for _, p := range paths {
		b, err := os.ReadFile(p)
		require.NoError(t, err)
		inputs[filepath.Base(filepath.Dir(filepath.Dir(p)))] = b
	}
	for name, b := range inputs {
		t.Run(name, func(t *testing.T) {
			wantIn, wantOut, err := ort.GetInputOutputInfoWithONNXData(b)
			require.NoError(t, err)
			gotIn, gotOut, err := graphIO(b)
			require.NoError(t, err)
			assert.Equal(t, wantIn, gotIn)
			assert.Equal(t, wantOut, gotOut)
		})
	}
}

func TestGraphIOErrors(t *testing.T) {
	tests := map[string][]byte{
		"garbage":   []byte("not a model"),
		"truncated": models.FraudONNX[:len(models.FraudONNX)/2],
		"no graph":  {0x08, 0x08},
	}
	for name, b := range tests {
		t.Run(name, func(t *testing.T) {
			_, _, err := graphIO(b)
			assert.Error(t, err)
		})
	}
}

func FuzzGraphIO(f *testing.F) {
	f.Add(models.FraudONNX)
	f.Add(onnxtest.Identity(onnxtest.Float, -1, 2))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _, _ = graphIO(b) // must not panic
	})
}
