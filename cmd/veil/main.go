// Command veil is Veil's tool box: the local pipeline (run), model sealing
// (seal), the development KBS (kbs), the transaction generator (gen) and the
// initdata builder (initdata). Each subcommand lives in its own file.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"syscall"
)

// command is one veil subcommand; args exclude the subcommand's name.
type command struct {
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

func commands() map[string]command {
	return map[string]command{
		"run":      {"run the whole confidential pipeline locally (seal, KBS, runtime, batcher, generator)", runPipeline},
		"seal":     {"encrypt a model directory for attested key release", runSeal},
		"kbs":      {"start the development Key Broker Service (DEVELOPMENT ONLY)", runKBS},
		"gen":      {"generate synthetic card transactions as CloudEvents", runGen},
		"initdata": {"build or decode the Kata initdata annotation", runInitdata},
	}
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: veil <command> [flags]\n\ncommands:")
	cmds := commands()
	names := make([]string, 0, len(cmds))
	for n := range cmds {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-9s %s\n", n, cmds[n].summary)
	}
}

func main() {
	if len(os.Args) < 2 {
		usage(os.Stderr)
		os.Exit(2)
	}
	name := os.Args[1]
	if name == "-h" || name == "--help" || name == "help" {
		usage(os.Stdout)
		return
	}
	cmd, ok := commands()[name]
	if !ok {
		fmt.Fprintf(os.Stderr, "veil: unknown command %q\n\n", name)
		usage(os.Stderr)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := cmd.run(ctx, os.Args[2:], os.Stdout, os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return
		}
		fmt.Fprintf(os.Stderr, "veil %s: %v\n", name, err)
		os.Exit(1)
	}
}

// maxConfigFileBytes bounds the operator-supplied files the subcommands read
// (policies, certificates): far above any real one, far below memory trouble.
const maxConfigFileBytes = 1 << 20
