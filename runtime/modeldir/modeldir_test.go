package modeldir

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestFind(t *testing.T) {
	tests := []struct {
		name    string
		files   []string
		want    string
		version string
		err     string
	}{
		{"model.onnx", []string{"model.onnx", "README.md"}, "model.onnx", "1", ""},
		{"preferred over others", []string{"model.onnx", "other.onnx"}, "model.onnx", "1", ""},
		{"single onnx", []string{"fraud.onnx", "scaler.json"}, "fraud.onnx", "1", ""},
		{"two onnx", []string{"a.onnx", "b.onnx"}, "", "", "2 model files"},
		{"highest version", []string{"1/model.onnx", "3/fraud.onnx", "10/model.onnx", "artifact/x.onnx"}, "10/model.onnx", "10", ""},
		{"top level wins over versions", []string{"model.onnx", "2/model.onnx"}, "model.onnx", "1", ""},
		{"highest version empty", []string{"1/model.onnx", "2/readme.txt"}, "", "", "highest version folder"},
		{"nothing", []string{"scaler.json"}, "", "", "no model file"},
		{"directory named like a model", []string{"x.onnx/file"}, "", "", "no model file"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			for _, f := range tc.files {
				p := filepath.Join(dir, f)
				require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o700))
				require.NoError(t, os.WriteFile(p, []byte("x"), 0o600))
			}
			m, err := Find(dir)
			if tc.err != "" {
				assert.ErrorContains(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, filepath.Join(dir, tc.want), m.Path)
			assert.Equal(t, tc.version, m.Version)
			assert.Equal(t, KindONNX, m.Kind)
		})
	}
}

func TestFindMissingDir(t *testing.T) {
	_, err := Find(filepath.Join(t.TempDir(), "nope"))
	assert.ErrorContains(t, err, "read model directory")
}

func TestFindSymlinkedFiles(t *testing.T) {
	dir, data := t.TempDir(), t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(data, "m"), []byte("x"), 0o600))
	require.NoError(t, os.Symlink(filepath.Join(data, "m"), filepath.Join(dir, "model.onnx")))
	m, err := Find(dir)
	require.NoError(t, err)
	assert.Equal(t, filepath.Join(dir, "model.onnx"), m.Path)
}

// A recognizer added in front (as sealed-model support does) takes part in
// the same rules.
func TestCustomRecognizer(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "2"), 0o700))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "2", "model.onnx.jwe"), []byte("x"), 0o600))
	f := ONNXFinder()
	f.Recognizers = append([]Recognizer{func(_, name string) (Kind, bool, error) {
		return "jwe", filepath.Ext(name) == ".jwe", nil
	}}, f.Recognizers...)
	m, err := f.Find(dir)
	require.NoError(t, err)
	assert.Equal(t, Kind("jwe"), m.Kind)
	assert.Equal(t, "2", m.Version)
	_, err = ReadONNX(m, 0)
	assert.ErrorContains(t, err, "unseal")
}

func TestReadONNX(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "model.onnx")
	require.NoError(t, os.WriteFile(p, []byte("0123456789"), 0o600))
	b, err := ReadONNX(Model{Path: p, Kind: KindONNX}, 0)
	require.NoError(t, err)
	assert.Equal(t, "0123456789", string(b))
	_, err = ReadONNX(Model{Path: p, Kind: KindONNX}, 5)
	assert.ErrorContains(t, err, "over the 5 byte limit")
	_, err = ReadONNX(Model{Path: filepath.Join(dir, "x"), Kind: KindONNX}, 0)
	assert.ErrorIs(t, err, ErrNotFound)
}
