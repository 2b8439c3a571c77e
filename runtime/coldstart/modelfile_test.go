package coldstart

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/veil-ai/veil/models"
	"github.com/veil-ai/veil/runtime/modeldir"
)

func TestFinderRecognizesSealed(t *testing.T) {
	key := newKey(t)
	jwe := sealModel(t, key)
	ossl := append([]byte("Salted__12345678"), make([]byte, 32)...)
	tests := []struct {
		name     string
		files    map[string][]byte
		wantPath string
		wantKind modeldir.Kind
	}{
		{"jwe by name in version folder", map[string][]byte{"1/model.onnx.jwe": jwe, "artifact/scaler.json": models.FraudScalerJSON}, "1/model.onnx.jwe", KindSealed},
		{"openssl by name", map[string][]byte{"2/model.onnx.enc": ossl}, "2/model.onnx.enc", KindSealed},
		{"jwe content under the plain name", map[string][]byte{"1/model.onnx": jwe}, "1/model.onnx", KindSealed},
		{"openssl content under any name", map[string][]byte{"1/weights.bin": ossl}, "1/weights.bin", KindSealed},
		{"plain model stays plain", map[string][]byte{"1/model.onnx": models.FraudONNX}, "1/model.onnx", modeldir.KindONNX},
		{"highest version wins", map[string][]byte{"1/model.onnx.jwe": jwe, "3/model.onnx.jwe": jwe}, "3/model.onnx.jwe", KindSealed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			for p, data := range tt.files {
				full := filepath.Join(dir, filepath.FromSlash(p))
				require.NoError(t, os.MkdirAll(filepath.Dir(full), 0o755))
				require.NoError(t, os.WriteFile(full, data, 0o644))
			}
			m, err := Finder().Find(dir)
			require.NoError(t, err)
			assert.Equal(t, filepath.Join(dir, filepath.FromSlash(tt.wantPath)), m.Path)
			assert.Equal(t, tt.wantKind, m.Kind)
			if m.Kind == KindSealed {
				b, err := ReadSealed(m)
				require.NoError(t, err)
				assert.Equal(t, tt.files[tt.wantPath], b)
			}
		})
	}
}

func TestFinderTwoSealedFilesIsAnError(t *testing.T) {
	dir := t.TempDir()
	jwe := sealModel(t, newKey(t))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "a.jwe"), jwe, 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "b.jwe"), jwe, 0o644))
	_, err := Finder().Find(dir)
	require.ErrorContains(t, err, "2 model files")
}

func TestReadSealedRefusesPlain(t *testing.T) {
	_, err := ReadSealed(modeldir.Model{Path: "x", Kind: modeldir.KindONNX})
	require.ErrorContains(t, err, "not sealed")
}
