// Command veil-runtime is Veil's KServe custom model server: it serves one
// ONNX model over the Open Inference Protocol (REST and gRPC).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/veil-ai/veil/runtime/server"
)

func main() {
	cfg, err := parseFlags(os.Args[1:])
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "veil-runtime:", err)
		os.Exit(2)
	}
	// SIGTERM (Kubernetes) and Ctrl-C drain in-flight requests, then exit.
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	// A sealed model that cannot be unsealed ends the process: exit 1
	// with the reason, rather than running unready forever.
	ctx, fail := context.WithCancelCause(ctx)
	defer fail(nil)
	cfg.Loader = stopOnUnservable(cfg.Loader, fail)
	if err := server.Run(ctx, cfg); err != nil {
		cfg.Logger.Error("veil-runtime failed", "error", err)
		os.Exit(1)
	}
	if cause := context.Cause(ctx); errors.Is(cause, errUnservable) {
		cfg.Logger.Error("veil-runtime: exiting, nothing was served", "error", cause)
		os.Exit(1)
	}
}
