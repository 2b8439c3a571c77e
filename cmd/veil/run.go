package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/term"

	"github.com/veil-ai/veil/pipeline"
)

const runSummary = `Run the whole confidential fraud-scoring pipeline on this machine: seal the
bundled fraud model with a fresh key, start the development KBS and upload the
key, cold-start veil-runtime on the sealed model (sample TEE: DEVELOPMENT ONLY,
insecure), start veil-batcher with a local CloudEvents sink, send generated
transactions and print a summary; an HTML report is written too.

Every flag can also be set through the environment as VEIL_RUN_<FLAG>, e.g.
VEIL_RUN_COUNT=5000 or VEIL_RUN_RATE=2000; a flag on the command line wins.`

// runPipeline is `veil run`.
func runPipeline(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg := pipeline.DefaultConfig()
	fs := flag.NewFlagSet("veil run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: veil run [flags]\n\n%s\n\nflags:\n", runSummary)
		fs.PrintDefaults()
	}
	fs.IntVar(&cfg.Count, "count", cfg.Count, "transactions to send")
	fs.Float64Var(&cfg.Rate, "rate", cfg.Rate, "transactions per second (0: as fast as the batcher answers)")
	fs.Uint64Var(&cfg.Seed, "seed", cfg.Seed, "generator seed (same seed, same transactions)")
	fs.Float64Var(&cfg.FraudRate, "fraud_rate", cfg.FraudRate, "share of fraudulent transactions")
	fs.IntVar(&cfg.Senders, "senders", cfg.Senders, "transactions in flight (the batcher answers each once it is scored)")
	fs.IntVar(&cfg.MaxBatchSize, "max_batch_size", cfg.MaxBatchSize, "batcher: most rows per runtime request")
	fs.DurationVar(&cfg.MaxLatency, "max_latency", cfg.MaxLatency, "batcher: longest a row waits for its batch to fill")
	fs.StringVar(&cfg.Protocol, "protocol", cfg.Protocol, "batcher → runtime protocol: grpc-raw or rest-binary")
	fs.StringVar(&cfg.Alg, "alg", cfg.Alg, "veil seal --alg: A256KW or dir")
	fs.StringVar(&cfg.ModelDir, "model_dir", cfg.ModelDir, "model directory to seal (default: the embedded fraud model)")
	fs.StringVar(&cfg.ResourceID, "resource_id", cfg.ResourceID, "KBS resource id of the model key")
	fs.IntVar(&cfg.KBSPort, "kbs_port", 0, "development KBS port on 127.0.0.1 (0: any free port)")
	fs.IntVar(&cfg.RuntimeHTTPPort, "runtime_http_port", 0, "runtime REST port (0: any free port)")
	fs.IntVar(&cfg.RuntimeGRPCPort, "runtime_grpc_port", 0, "runtime gRPC port (0: any free port)")
	fs.IntVar(&cfg.BatcherPort, "batcher_port", 0, "batcher port (0: any free port)")
	fs.IntVar(&cfg.SinkPort, "sink_port", 0, "local result sink port (0: any free port)")
	fs.DurationVar(&cfg.StartTimeout, "start_timeout", cfg.StartTimeout, "how long each process may take to become ready")
	fs.DurationVar(&cfg.ResultTimeout, "result_timeout", cfg.ResultTimeout, "how long to wait for the last results after the last send")
	fs.StringVar(&cfg.ReportPath, "report", cfg.ReportPath, "HTML report path (empty: no report)")
	fs.StringVar(&cfg.SummaryJSON, "summary_json", "", "also write the summary as JSON to this file")
	fs.StringVar(&cfg.ResultsPath, "results_jsonl", "", "also write one JSON line per transaction (id, ground truth, score, latency; no features)")
	fs.StringVar(&cfg.BinDir, "bin_dir", "", "directory of veil, veil-runtime and veil-batcher (default: beside this executable)")
	fs.BoolVar(&cfg.Verbose, "verbose", false, "show the child processes' logs on stderr")
	if err := envDefaults(fs, os.LookupEnv); err != nil {
		return err
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	if cfg.BinDir == "" {
		exe, err := os.Executable()
		if err != nil {
			return fmt.Errorf("find the veil executable: %w", err)
		}
		if exe, err = filepath.EvalSymlinks(exe); err != nil {
			return fmt.Errorf("find the veil executable: %w", err)
		}
		cfg.BinDir = filepath.Dir(exe)
	}
	cfg.Stdout, cfg.Stderr = stdout, stderr
	if f, ok := stdout.(*os.File); ok {
		cfg.Terminal = term.IsTerminal(int(f.Fd()))
	}
	_, err := pipeline.Run(ctx, cfg)
	return err
}

// envDefaults sets each flag from VEIL_RUN_<NAME> when that is set, before
// the command line is parsed (so the command line wins).
func envDefaults(fs *flag.FlagSet, lookup func(string) (string, bool)) error {
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		name := "VEIL_RUN_" + strings.ToUpper(f.Name)
		if v, ok := lookup(name); ok && err == nil {
			if serr := f.Value.Set(v); serr != nil {
				err = fmt.Errorf("%s=%q: %w", name, v, serr)
			}
		}
	})
	return err
}
