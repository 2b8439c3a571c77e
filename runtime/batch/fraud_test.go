package batch

import (
	"context"
	"encoding/binary"
	"math"
	"math/rand/v2"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/veil-ai/veil/models"
	"github.com/veil-ai/veil/oip"
	"github.com/veil-ai/veil/runtime/fraudtest"
	"github.com/veil-ai/veil/runtime/onnx"
)

// TestFraudModelJoinedEqualsAlone runs the shipped fraud model through the
// batcher from many goroutines with mixed row counts and checks every
// caller's scores against the same model run on that caller's rows alone.
func TestFraudModelJoinedEqualsAlone(t *testing.T) {
	env := fraudEnv(t)
	model, err := env.NewModel(models.FraudONNX, onnx.Options{IntraOpThreads: 1})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, model.Close()) })

	// The first run is held until requests have queued behind it, so that
	// joined runs are certain to happen, not merely likely.
	held := &holdFirst{Engine: model, hold: make(chan struct{})}
	reg := prometheus.NewRegistry()
	b := newBatcher(t, Config{MaxBatchSize: 32, MaxBatchTime: forever, Model: "fraud", Registerer: reg}, held)
	firstIn := fp32Input(rowsFor(0, 1, 5))
	firstIn[0].Name = fraudtest.InputName
	first := goInfer(context.Background(), b, firstIn)

	// The workshop's reference cases keep the test honest about what the
	// model computes, not only about batching being invisible.
	ref, err := fraudtest.Batch(fraudtest.Cases())
	require.NoError(t, err)
	refOut := goInfer(context.Background(), b, []oip.Tensor{ref})

	var wg sync.WaitGroup
	for g := range 16 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(g), 1))
			for range 30 {
				n := 1 + rng.IntN(8)
				in := oip.Tensor{Name: fraudtest.InputName, Datatype: oip.FP32, Shape: []int64{int64(n), 5}}
				for range n * 5 {
					in.Raw = binary.LittleEndian.AppendUint32(in.Raw, math.Float32bits(float32(rng.NormFloat64())))
				}
				alone, err := model.Infer(context.Background(), []oip.Tensor{in})
				if !assert.NoError(t, err) {
					return
				}
				joined, err := b.Infer(context.Background(), []oip.Tensor{in})
				if !assert.NoError(t, err) || !assert.Len(t, joined, 1) {
					return
				}
				assert.Equal(t, []int64{int64(n), 1}, joined[0].Shape)
				assert.InDeltaSlice(t, fraudtest.Scores(alone[0]), fraudtest.Scores(joined[0]), fraudtest.Tolerance)
			}
		})
	}
	// Release the first run once two requests wait together (or a full
	// group has already been joined): either way joins are certain.
	calls := func() *dto.Histogram { return histogram(t, reg, "veil_batch_size_requests") }
	require.Eventually(t, func() bool {
		return b.queuedCalls() >= 2 || calls().GetSampleSum() > float64(calls().GetSampleCount())
	}, 10*time.Second, time.Millisecond)
	close(held.hold)
	wg.Wait()
	require.NoError(t, receive(t, first).err)
	o := receive(t, refOut)
	require.NoError(t, o.err)
	for i, c := range fraudtest.Cases() {
		assert.InDelta(t, c.Score, fraudtest.Scores(o.out[0])[i], fraudtest.Tolerance, c.Name)
	}
	assert.Greater(t, calls().GetSampleSum(), float64(calls().GetSampleCount()), "some runs joined several requests")
}

// sharedEnv is the test process's one onnxruntime environment (onnxruntime_go
// allows one at a time), made by the first test that needs it.
var sharedEnv struct {
	once sync.Once
	env  *onnx.Env
	err  error
}

// fraudEnv returns the shared environment, or skips when onnxruntime is not
// installed outside CI.
func fraudEnv(t *testing.T) *onnx.Env {
	t.Helper()
	sharedEnv.once.Do(func() {
		lib, err := onnx.FindLibrary("")
		if err != nil {
			sharedEnv.err = err
			return
		}
		sharedEnv.env, sharedEnv.err = onnx.NewEnv(lib)
	})
	if sharedEnv.err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("onnxruntime is part of CI: %v", sharedEnv.err)
		}
		t.Skipf("onnxruntime not available (run `make ort`): %v", sharedEnv.err)
	}
	return sharedEnv.env
}

// holdFirst holds the first run until hold is closed.
type holdFirst struct {
	Engine
	once sync.Once
	in   atomic.Bool
	hold chan struct{}
}

func (h *holdFirst) Infer(ctx context.Context, inputs []oip.Tensor) ([]oip.Tensor, error) {
	h.once.Do(func() { h.in.Store(true); <-h.hold })
	return h.Engine.Infer(ctx, inputs)
}

// entered reports whether the first run is being held.
func (h *holdFirst) entered() bool { return h.in.Load() }
