// Command veil-batcher is the on-prem CloudEvents function: it receives
// card transactions (dev.veil.transaction.v1), micro-batches them into the
// confidential runtime over the Open Inference Protocol, and answers with
// fraud score events (dev.veil.fraud.score.v1). See package functions.
//
// Every flag can also be set from the environment (Knative Functions
// passes configuration that way): VEIL_<FLAG IN UPPER CASE>, plus the
// platform's own PORT (listen port), VEIL_RUNTIME_URL (--runtime) and
// K_SINK (--sink, injected by a SinkBinding). Flags win over environment.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/veil-ai/veil/functions"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	cfg, err := functions.ParseFlags(os.Args[1:], os.Getenv, os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "veil-batcher:", err)
		os.Exit(2)
	}
	if err := functions.Run(ctx, cfg); err != nil {
		cfg.Logger.Error("veil-batcher failed", "error", err)
		os.Exit(1)
	}
}
