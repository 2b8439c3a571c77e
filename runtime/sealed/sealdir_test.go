package sealed

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"testing/fstest"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/veil-ai/veil/models"
)

func TestSealTree(t *testing.T) {
	for _, alg := range []jose.KeyAlgorithm{jose.DIRECT, jose.A256KW} {
		t.Run(string(alg), func(t *testing.T) {
			src := fstest.MapFS{
				"1/model.onnx":         {Data: models.FraudONNX},
				"2/model.onnx":         {Data: models.FraudONNX},
				"artifact/scaler.json": {Data: models.FraudScalerJSON},
				"README.txt":           {Data: []byte("hello")},
			}
			out := filepath.Join(t.TempDir(), "sealed")
			key := randomKey(t, 32)
			files, err := SealTree(src, out, key, SealTreeOptions{Alg: alg})
			require.NoError(t, err)
			assert.ElementsMatch(t, []SealedFile{{"1/model.onnx", "1/model.onnx.jwe"}, {"2/model.onnx", "2/model.onnx.jwe"}}, files)

			for _, v := range []string{"1", "2"} {
				_, err := os.Stat(filepath.Join(out, v, "model.onnx"))
				assert.ErrorIs(t, err, os.ErrNotExist, "no plaintext model in the output")
				data, err := os.ReadFile(filepath.Join(out, v, "model.onnx.jwe"))
				require.NoError(t, err)
				assert.False(t, bytes.Contains(data, models.FraudONNX[:32]))
				plain, err := Open(data, key, OpenOptions{})
				require.NoError(t, err)
				assert.Equal(t, models.FraudONNX, plain)
			}
			scaler, err := os.ReadFile(filepath.Join(out, "artifact", "scaler.json"))
			require.NoError(t, err)
			assert.Equal(t, models.FraudScalerJSON, scaler)
		})
	}
}

func TestSealTreeRefuses(t *testing.T) {
	key := randomKey(t, 32)
	sealedModel, err := SealJWE(models.FraudONNX, key, jose.DIRECT, jose.A256GCM)
	require.NoError(t, err)
	tests := []struct {
		name string
		src  fstest.MapFS
		opts SealTreeOptions
		want string
	}{
		{"no model", fstest.MapFS{"a.txt": {Data: []byte("x")}}, SealTreeOptions{}, "no model.onnx"},
		{"not onnx", fstest.MapFS{"1/model.onnx": {Data: []byte("garbage")}}, SealTreeOptions{}, "not an ONNX model"},
		{"already sealed", fstest.MapFS{"1/model.onnx.jwe": {Data: sealedModel}}, SealTreeOptions{}, "already sealed"},
		{"sealed content under plain name", fstest.MapFS{"1/model.onnx": {Data: sealedModel}}, SealTreeOptions{}, "already sealed"},
		{"symlink", fstest.MapFS{"1/model.onnx": {Data: models.FraudONNX}, "link": {Mode: os.ModeSymlink}}, SealTreeOptions{}, "regular files"},
		{"bad alg", fstest.MapFS{"1/model.onnx": {Data: models.FraudONNX}}, SealTreeOptions{Alg: jose.A128KW}, "want dir or A256KW"},
		{"too large", fstest.MapFS{"1/model.onnx": {Data: models.FraudONNX}}, SealTreeOptions{MaxBytes: 100}, "too large"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := SealTree(tt.src, filepath.Join(t.TempDir(), "out"), key, tt.opts)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
		})
	}

	t.Run("output not empty", func(t *testing.T) {
		out := t.TempDir()
		require.NoError(t, os.WriteFile(filepath.Join(out, "x"), nil, 0o600))
		_, err := SealTree(fstest.MapFS{"1/model.onnx": {Data: models.FraudONNX}}, out, key, SealTreeOptions{})
		require.ErrorContains(t, err, "not empty")
	})
}
