package batch

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/veil-ai/veil/models"
	"github.com/veil-ai/veil/oip"
	"github.com/veil-ai/veil/oip/client"
	"github.com/veil-ai/veil/runtime/fraudtest"
	"github.com/veil-ai/veil/runtime/onnx"
	"github.com/veil-ai/veil/runtime/server"
)

// TestServerJoinsRequestsAndKeepsTheirIDs serves the fraud model through
// the runtime's server with the batcher in front, as veil-runtime does, and
// checks at the protocol level that joined requests each get their own id
// and rows, and that bad requests fail alone.
func TestServerJoinsRequestsAndKeepsTheirIDs(t *testing.T) {
	env := fraudEnv(t)
	held := &holdFirst{hold: make(chan struct{})}
	reg := prometheus.NewRegistry()
	var b *Batcher
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := server.Start(ctx, server.Config{
		Host: "127.0.0.1", ListenEphemeral: true, Env: env, ModelName: "fraud", Registry: reg,
		Logger: slog.New(slog.DiscardHandler),
		Loader: func(_ context.Context, env *onnx.Env) (*server.LoadedModel, error) {
			m, err := env.NewModel(models.FraudONNX, onnx.Options{IntraOpThreads: 1})
			if err != nil {
				return nil, err
			}
			return &server.LoadedModel{Model: m}, nil
		},
		NewEngine: func(m server.Model) (server.Engine, error) {
			held.Engine = m
			var err error
			b, err = New(Config{MaxBatchSize: 64, MaxBatchTime: forever, Model: "fraud", Registerer: reg}, held)
			return b, err
		},
	})
	require.NoError(t, err)
	t.Cleanup(func() { cancel(); _ = srv.Wait() })
	<-srv.Loaded()

	cl, err := client.New(client.Config{URL: "http://" + srv.HTTPAddr(), Protocol: client.RESTJSON, Timeout: 30 * time.Second})
	require.NoError(t, err)
	t.Cleanup(func() { _ = cl.Close() })
	infer := func(id string, in oip.Tensor) (*oip.InferResponse, error) {
		return cl.Infer(context.Background(), "fraud", []oip.Tensor{in}, client.WithRequestID(id))
	}

	// The first request is held in the engine, so the rest queue behind it.
	firstIn, err := fraudtest.Batch(fraudtest.Cases())
	require.NoError(t, err)
	firstDone := make(chan error, 1)
	go func() {
		resp, err := infer("first", firstIn)
		if err == nil && resp.ID != "first" {
			err = fmt.Errorf("id %q", resp.ID)
		}
		firstDone <- err
	}()
	require.Eventually(t, func() bool { return held.entered() }, 10*time.Second, time.Millisecond)

	type answer struct {
		in   oip.Tensor
		resp *oip.InferResponse
		err  error
	}
	const good = 12
	answers := make([]answer, good+2)
	var wg sync.WaitGroup
	for i := range good {
		in := oip.Tensor{Name: fraudtest.InputName, Datatype: oip.FP32, Shape: []int64{int64(i%4 + 1), 5}}
		for k := range (i%4 + 1) * 5 {
			in.Raw = binary.LittleEndian.AppendUint32(in.Raw, math.Float32bits(float32(i)-float32(k)/7))
		}
		answers[i].in = in
	}
	answers[good].in = oip.Tensor{Name: fraudtest.InputName, Datatype: oip.FP32, Shape: []int64{1, 4}, Raw: make([]byte, 16)}
	answers[good+1].in = oip.Tensor{Name: "nope", Datatype: oip.FP32, Shape: []int64{1, 5}, Raw: make([]byte, 20)}
	for i := range answers {
		wg.Go(func() { answers[i].resp, answers[i].err = infer(fmt.Sprintf("req-%d", i), answers[i].in) })
	}
	require.Eventually(t, func() bool { return b.queuedCalls() == len(answers) }, 10*time.Second, time.Millisecond)
	close(held.hold)
	wg.Wait()
	require.NoError(t, <-firstDone)

	for i, a := range answers[:good] {
		require.NoError(t, a.err, "request %d", i)
		assert.Equal(t, fmt.Sprintf("req-%d", i), a.resp.ID, "each caller gets its own id")
		require.Len(t, a.resp.Outputs, 1)
		alone, err := held.Engine.Infer(context.Background(), []oip.Tensor{a.in})
		require.NoError(t, err)
		assert.Equal(t, alone[0].Shape, a.resp.Outputs[0].Shape)
		assert.InDeltaSlice(t, fraudtest.Scores(alone[0]), fraudtest.Scores(a.resp.Outputs[0]), fraudtest.Tolerance, "request %d gets its own rows", i)
	}
	for _, a := range answers[good:] {
		var ce *client.Error
		require.True(t, errors.As(a.err, &ce), "a bad request fails: %v", a.err)
		assert.Equal(t, http.StatusBadRequest, ce.HTTPStatus, ce.Message)
	}
	calls := histogram(t, reg, "veil_batch_size_requests")
	assert.GreaterOrEqual(t, calls.GetSampleSum()-float64(calls.GetSampleCount()), float64(good-1), "the good requests ran as one joined run")
}
