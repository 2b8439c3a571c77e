package main

import (
	"flag"
	"fmt"
	"log/slog"
	"os"

	"github.com/veil-ai/veil/runtime/server"
)

// parseFlags turns the command line (KServe runtime conventions) into the
// server's Config. Other features add their flags here.
func parseFlags(args []string) (server.Config, error) {
	cfg := server.Config{}
	fs := flag.NewFlagSet("veil-runtime", flag.ContinueOnError)
	fs.StringVar(&cfg.ModelName, "model_name", server.DefaultModelName, "name the model is served under")
	fs.StringVar(&cfg.ModelDir, "model_dir", server.DefaultModelDir, "model directory: model.onnx, a single *.onnx, or numbered version folders")
	fs.StringVar(&cfg.Host, "host", "", "listen address for both ports (empty: all interfaces)")
	fs.IntVar(&cfg.HTTPPort, "http_port", server.DefaultHTTPPort, "REST, /metrics and gRPC-over-h2c port")
	fs.IntVar(&cfg.GRPCPort, "grpc_port", server.DefaultGRPCPort, "gRPC port")
	fs.StringVar(&cfg.ORTLibrary, "ort_library", "", "onnxruntime shared library (default: $ORT_LIBRARY_PATH, else libonnxruntime.so.1 beside this binary)")
	fs.Int64Var(&cfg.MaxRequestBytes, "max_request_bytes", server.DefaultMaxRequestBytes, "largest REST body or gRPC message accepted")
	fs.IntVar(&cfg.IntraOpThreads, "intra_op_threads", 0, "onnxruntime intra-op threads (0: the cgroup CPU quota)")
	fs.BoolVar(&cfg.IntraOpSpinning, "intra_op_spinning", false, "let idle onnxruntime intra-op threads busy-wait (lower latency for one request at a time, burns CPU under concurrent load)")
	fs.DurationVar(&cfg.ShutdownGrace, "shutdown_grace", server.DefaultShutdownGrace, "how long SIGTERM waits for in-flight requests")
	logLevel := fs.String("log_level", "info", "log level: debug, info, warn or error")
	batching := addBatchFlags(fs)
	sealedModels := addSealedFlags(fs)
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	if fs.NArg() > 0 {
		return cfg, fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return cfg, fmt.Errorf("--log_level: %w", err)
	}
	cfg.Logger = slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	if err := batching.apply(&cfg, cfg.Logger); err != nil {
		return cfg, err
	}
	if err := sealedModels.apply(&cfg, cfg.Logger); err != nil {
		return cfg, err
	}
	return cfg, nil
}
