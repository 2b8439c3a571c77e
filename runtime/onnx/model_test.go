package onnx

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/veil-ai/veil/models"
	"github.com/veil-ai/veil/oip"
	"github.com/veil-ai/veil/runtime/fraudtest"
	"github.com/veil-ai/veil/runtime/internal/onnxtest"
)

// testEnv is the one onnxruntime environment this test binary may create.
var testEnv *Env

func TestMain(m *testing.M) {
	lib := os.Getenv(LibraryEnv)
	if lib == "" {
		fmt.Fprintf(os.Stderr, "runtime/onnx tests need onnxruntime: set %s (run `make ort`; the Makefile exports it)\n", LibraryEnv)
		os.Exit(1)
	}
	env, err := NewEnv(lib)
	if err != nil {
		fmt.Fprintf(os.Stderr, "runtime/onnx tests: %v\n", err)
		os.Exit(1)
	}
	testEnv = env
	code := m.Run()
	if err := env.Close(); err != nil {
		fmt.Fprintln(os.Stderr, err)
	}
	os.Exit(code)
}

func loadModel(t *testing.T, b []byte) *Model {
	t.Helper()
	m, err := testEnv.NewModel(b, Options{IntraOpThreads: 1})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, m.Close()) })
	return m
}

func TestFraudModel(t *testing.T) {
	m := loadModel(t, models.FraudONNX)
	assert.Equal(t, []oip.TensorMetadata{{Name: "dense_input", Datatype: "FP32", Shape: []int64{-1, 5}}}, m.Inputs())
	assert.Equal(t, []oip.TensorMetadata{{Name: "dense_3", Datatype: "FP32", Shape: []int64{-1, 1}}}, m.Outputs())

	cases := fraudtest.Cases()
	in, err := fraudtest.Batch(cases)
	require.NoError(t, err)
	out, err := m.Infer(context.Background(), []oip.Tensor{in})
	require.NoError(t, err)
	require.Len(t, out, 1)
	assert.Equal(t, []int64{2, 1}, out[0].Shape)
	for i, s := range fraudtest.Scores(out[0]) {
		assert.InDelta(t, cases[i].Score, s, fraudtest.Tolerance, cases[i].Name)
	}
}

func TestFraudModelConcurrent(t *testing.T) {
	m := loadModel(t, models.FraudONNX)
	cases := fraudtest.Cases()
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for g := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := cases[g%len(cases)]
			in, err := fraudtest.Batch([]fraudtest.Case{c})
			if err != nil {
				errs <- err
				return
			}
			out, err := m.Infer(context.Background(), []oip.Tensor{in})
			if err != nil {
				errs <- err
				return
			}
			if s := fraudtest.Scores(out[0])[0]; math.Abs(s-c.Score) > fraudtest.Tolerance {
				errs <- fmt.Errorf("%s: score %v, want %v", c.Name, s, c.Score)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// The variant models from other workshop forks must load and run with no
// code change, whatever their tensor names and input count.
func TestVariantModels(t *testing.T) {
	dirs, err := filepath.Glob(filepath.Join("..", "..", "models", "variants", "*", "1", "model.onnx"))
	require.NoError(t, err)
	require.NotEmpty(t, dirs)
	for _, path := range dirs {
		t.Run(filepath.Base(filepath.Dir(filepath.Dir(path))), func(t *testing.T) {
			b, err := os.ReadFile(path)
			require.NoError(t, err)
			m := loadModel(t, b)
			var inputs []oip.Tensor
			for _, in := range m.Inputs() {
				shape := append([]int64(nil), in.Shape...)
				for i := range shape {
					if shape[i] < 0 {
						shape[i] = 2
					}
				}
				n, err := oip.ElementCount(shape)
				require.NoError(t, err)
				require.Equal(t, "FP32", in.Datatype)
				inputs = append(inputs, oip.Tensor{Name: in.Name, Datatype: oip.FP32, Shape: shape, Raw: make([]byte, 4*n)})
			}
			out, err := m.Infer(context.Background(), inputs)
			require.NoError(t, err)
			require.Len(t, out, len(m.Outputs()))
			for i, o := range out {
				assert.Equal(t, m.Outputs()[i].Name, o.Name)
				assert.NoError(t, o.Validate())
				assert.Equal(t, int64(2), o.Shape[0])
			}
		})
	}
}

// Every OIP datatype passes through an Identity model unchanged.
func TestAllDatatypes(t *testing.T) {
	tests := []struct {
		onnxType int
		dt       oip.DataType
		raw      []byte
		strings  [][]byte
	}{
		{onnxtest.Bool, oip.Bool, []byte{1, 0, 1, 1}, nil},
		{onnxtest.Int8, oip.Int8, []byte{0x80, 1, 2, 0x7f}, nil},
		{onnxtest.Int16, oip.Int16, []byte{1, 2, 3, 4, 5, 6, 7, 0x80}, nil},
		{onnxtest.Int32, oip.Int32, seq(16), nil},
		{onnxtest.Int64, oip.Int64, seq(32), nil},
		{onnxtest.Uint8, oip.Uint8, []byte{0, 255, 3, 4}, nil},
		{onnxtest.Uint16, oip.Uint16, seq(8), nil},
		{onnxtest.Uint32, oip.Uint32, seq(16), nil},
		{onnxtest.Uint64, oip.Uint64, seq(32), nil},
		{onnxtest.Float16, oip.FP16, []byte{0, 0x3c, 0, 0xc0, 0, 0x7c, 0x00, 0x38}, nil},
		{onnxtest.BFloat16, oip.BF16, []byte{0x80, 0x3f, 0, 0x40, 0, 0, 0x80, 0xbf}, nil},
		{onnxtest.Float, oip.FP32, f32(1.5, -2, 0.0050283, 3e38), nil},
		{onnxtest.Double, oip.FP64, seq(32), nil},
		{onnxtest.String, oip.Bytes, nil, [][]byte{[]byte("a"), []byte("é"), {}, []byte("long string")}},
	}
	for _, tc := range tests {
		t.Run(string(tc.dt), func(t *testing.T) {
			m := loadModel(t, onnxtest.Identity(tc.onnxType, -1, 2))
			assert.Equal(t, []oip.TensorMetadata{{Name: "x", Datatype: string(tc.dt), Shape: []int64{-1, 2}}}, m.Inputs())
			in := oip.Tensor{Name: "x", Datatype: tc.dt, Shape: []int64{2, 2}, Raw: tc.raw, Strings: tc.strings}
			out, err := m.Infer(context.Background(), []oip.Tensor{in})
			require.NoError(t, err)
			require.Len(t, out, 1)
			assert.Equal(t, "y", out[0].Name)
			assert.Equal(t, tc.dt, out[0].Datatype)
			assert.Equal(t, []int64{2, 2}, out[0].Shape)
			if tc.dt == oip.Bytes {
				assert.Equal(t, len(tc.strings), len(out[0].Strings))
				for i := range tc.strings {
					assert.Equal(t, string(tc.strings[i]), string(out[0].Strings[i]))
				}
			} else {
				assert.Equal(t, tc.raw, out[0].Raw)
			}
		})
	}
}

func TestMisalignedAndEmptyInputs(t *testing.T) {
	m := loadModel(t, onnxtest.Identity(onnxtest.Float, -1, 2))
	buf := append([]byte{0}, f32(1, 2)...)
	out, err := m.Infer(context.Background(), []oip.Tensor{{Name: "x", Datatype: oip.FP32, Shape: []int64{1, 2}, Raw: buf[1:]}})
	require.NoError(t, err)
	assert.Equal(t, f32(1, 2), out[0].Raw)

	out, err = m.Infer(context.Background(), []oip.Tensor{{Name: "x", Datatype: oip.FP32, Shape: []int64{0, 2}, Raw: []byte{}}})
	require.NoError(t, err)
	assert.Equal(t, []int64{0, 2}, out[0].Shape)
	assert.Empty(t, out[0].Raw)
}

func TestInferErrors(t *testing.T) {
	m := loadModel(t, models.FraudONNX)
	good, err := fraudtest.Batch(fraudtest.Cases()[:1])
	require.NoError(t, err)
	with := func(f func(*oip.Tensor)) []oip.Tensor {
		t := good
		t.Shape = append([]int64(nil), good.Shape...)
		f(&t)
		return []oip.Tensor{t}
	}
	tests := []struct {
		name        string
		inputs      []oip.Tensor
		unsupported bool
		msg         string
	}{
		{"unknown input", with(func(t *oip.Tensor) { t.Name = "nope" }), false, `unknown input "nope"`},
		{"missing input", nil, false, `missing input "dense_input"`},
		{"twice", append(with(func(*oip.Tensor) {}), good), false, "given twice"},
		{"wrong datatype", with(func(t *oip.Tensor) { t.Datatype = oip.FP64; t.Shape = []int64{1, 5}; t.Raw = make([]byte, 40) }), false, "model expects FP32"},
		{"wrong rank", with(func(t *oip.Tensor) { t.Shape = []int64{5} }), false, "model expects [-1 5]"},
		{"wrong dim", with(func(t *oip.Tensor) { t.Shape = []int64{5, 1} }), false, "model expects [-1 5]"},
		{"count mismatch", with(func(t *oip.Tensor) { t.Shape = []int64{2, 5} }), false, "needs 40 bytes"},
		{"scalar", with(func(t *oip.Tensor) { t.Shape = []int64{}; t.Raw = t.Raw[:4] }), false, "model expects"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := m.Infer(context.Background(), tc.inputs)
			require.Error(t, err)
			assert.True(t, oip.IsInvalid(err), "want a client error, got %v", err)
			assert.Contains(t, err.Error(), tc.msg)
		})
	}
}

func TestInferCanceled(t *testing.T) {
	m := loadModel(t, models.FraudONNX)
	in, err := fraudtest.Batch(fraudtest.Cases())
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = m.Infer(ctx, []oip.Tensor{in})
	assert.ErrorIs(t, err, context.Canceled)
}

func TestBytesWithNULUnsupported(t *testing.T) {
	m := loadModel(t, onnxtest.Identity(onnxtest.String, 1))
	_, err := m.Infer(context.Background(), []oip.Tensor{{Name: "x", Datatype: oip.Bytes, Shape: []int64{1}, Strings: [][]byte{{'a', 0}}}})
	assert.ErrorIs(t, err, oip.ErrUnsupported)
}

func TestClosedModel(t *testing.T) {
	m, err := testEnv.NewModel(models.FraudONNX, Options{IntraOpThreads: 1})
	require.NoError(t, err)
	require.NoError(t, m.Close())
	require.NoError(t, m.Close())
	_, err = m.Infer(context.Background(), nil)
	assert.ErrorContains(t, err, "closed")
}

func TestNewModelErrors(t *testing.T) {
	_, err := testEnv.NewModel(nil, Options{})
	assert.ErrorContains(t, err, "no ONNX bytes")
	_, err = testEnv.NewModel([]byte("not a model"), Options{})
	assert.ErrorContains(t, err, "read ONNX graph")
}

func TestSecondEnvRefused(t *testing.T) {
	_, err := NewEnv(os.Getenv(LibraryEnv))
	assert.ErrorContains(t, err, "already initialised")
}

func seq(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + 1)
	}
	return b
}

func f32(v ...float32) []byte {
	var b []byte
	for _, x := range v {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(x))
	}
	return b
}
