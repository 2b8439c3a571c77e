package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime/pprof"
	"time"

	"github.com/veil-ai/veil/models"
	"github.com/veil-ai/veil/runtime/batch"
	"github.com/veil-ai/veil/runtime/onnx"
	"github.com/veil-ai/veil/runtime/server"
)

// startInProcess serves the fraud model with package server in this
// process, for -cpuprofile: one profile then holds the server's hot paths
// (runtime/server, oip codecs, runtime/batch, onnxruntime calls) beside
// the client's, each under its own package name. Rows measured this way
// have no per-core figure, since client and server share the process.
func startInProcess(ctx context.Context, cfg config, bs batchSettings) (*runtimeServer, error) {
	ctx, cancel := context.WithCancel(ctx)
	srv, err := server.Start(ctx, server.Config{
		ModelName:       modelName,
		Host:            "127.0.0.1",
		ListenEphemeral: true,
		ORTLibrary:      cfg.ortLib,
		Logger:          slog.New(slog.DiscardHandler),
		Loader: func(_ context.Context, env *onnx.Env) (*server.LoadedModel, error) {
			m, err := env.NewModel(models.FraudONNX, onnx.Options{})
			if err != nil {
				return nil, err
			}
			return &server.LoadedModel{Model: m, Version: "1"}, nil
		},
		NewEngine: func(m server.Model) (server.Engine, error) {
			return batch.New(batch.Config{MaxBatchSize: bs.size, MaxBatchTime: bs.wait, Model: modelName}, m)
		},
	})
	if err != nil {
		cancel()
		return nil, fmt.Errorf("start in-process server: %w", err)
	}
	done := make(chan struct{})
	go func() { _ = srv.Wait(); close(done) }()
	s := &runtimeServer{
		httpURL:  "http://" + srv.HTTPAddr(),
		grpcAddr: srv.GRPCAddr(),
		shutdown: func() { cancel(); <-done },
	}
	if err := waitReady(ctx, s.httpURL, done, 60*time.Second); err != nil {
		s.stop()
		return nil, err
	}
	return s, nil
}

// startProfile writes a CPU profile of the server rows to path.
func startProfile(path string) (stop func() error, err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	return func() error {
		pprof.StopCPUProfile()
		return errors.Join(f.Close())
	}, nil
}
