package functions

import (
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/veil-ai/veil/internal/boundedio"

	"github.com/veil-ai/veil/oip/client"
)

// envNames maps flags to the platform's own variable names.
var envNames = map[string]string{"port": "PORT", "runtime": "VEIL_RUNTIME_URL", "sink": "K_SINK"}

// ParseFlags reads the batcher's configuration from command-line flags,
// falling back to the environment for every flag not given: the
// platform's PORT, VEIL_RUNTIME_URL and K_SINK, and VEIL_<FLAG> for the
// rest. Knative Functions hosts call it with no args and their config map.
func ParseFlags(args []string, getenv func(string) string, stderr io.Writer) (Config, error) {
	cfg := DefaultConfig()
	fs := flag.NewFlagSet("veil-batcher", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		port, protocol, scalerFile, logLevel, listen string
	)
	fs.StringVar(&port, "port", "8080", "listen port (env PORT)")
	fs.StringVar(&listen, "listen_address", "", "listen host:port; overrides --port")
	fs.StringVar(&cfg.RuntimeURL, "runtime", "", "runtime OIP URL, http(s)://host:port (env VEIL_RUNTIME_URL); for gRPC the runtime's gRPC (or h2c HTTP) port")
	fs.StringVar(&protocol, "protocol", string(cfg.Protocol), "runtime transport: grpc-raw, rest-binary, grpc or rest-json")
	fs.StringVar(&cfg.RuntimeCAFile, "runtime_ca", "", "PEM file of CA certificates for an https runtime")
	fs.StringVar(&cfg.Model.Model, "model_name", cfg.Model.Model, "model name at the runtime")
	fs.StringVar(&cfg.Model.Version, "model_version", "", "model version (empty: the runtime's default)")
	fs.StringVar(&cfg.Model.InputName, "input_name", cfg.Model.InputName, "model input tensor name")
	fs.StringVar(&cfg.Model.OutputName, "output_name", "", "model output tensor holding the score (empty: the first)")
	fs.StringVar(&scalerFile, "scaler", "", "scaler.json with mean_, scale_ and feature_order (default: the shipped fraud scaler)")
	fs.Float64Var(&cfg.Receiver.Threshold, "threshold", cfg.Receiver.Threshold, "fraud = score > threshold")
	fs.StringVar(&cfg.Receiver.Source, "source", cfg.Receiver.Source, "source attribute of result events")
	fs.StringVar(&cfg.SinkURL, "sink", "", "send results to this CloudEvents URL instead of replying (env K_SINK)")
	fs.BoolVar(&cfg.Receiver.SinkBatch, "sink_batch", false, "with a sink: one dev.veil.fraud.score.batch.v1 event per runtime batch")
	fs.IntVar(&cfg.Batch.MaxBatchSize, "max_batch_size", cfg.Batch.MaxBatchSize, "rows per runtime request")
	fs.DurationVar(&cfg.Batch.MaxLatency, "max_latency", cfg.Batch.MaxLatency, "longest a row waits for its batch to fill")
	fs.IntVar(&cfg.Batch.MaxConcurrency, "max_concurrency", cfg.Batch.MaxConcurrency, "runtime requests in flight")
	fs.IntVar(&cfg.Batch.QueueSize, "queue_size", cfg.Batch.QueueSize, "rows waiting for a batch before 429")
	fs.DurationVar(&cfg.Batch.RequestTimeout, "request_timeout", cfg.Batch.RequestTimeout, "deadline of one runtime request")
	fs.IntVar(&cfg.Batch.DedupSize, "dedup_size", cfg.Batch.DedupSize, "results remembered by (source, id) for redeliveries (0: off)")
	fs.DurationVar(&cfg.Batch.DedupTTL, "dedup_window", cfg.Batch.DedupTTL, "how long results are remembered for redeliveries")
	fs.Int64Var(&cfg.Receiver.MaxBodyBytes, "max_body_bytes", cfg.Receiver.MaxBodyBytes, "largest request body")
	fs.IntVar(&cfg.Receiver.MaxBatchEvents, "max_batch_events", cfg.Receiver.MaxBatchEvents, "most events in one batched-mode request")
	fs.DurationVar(&cfg.ShutdownTimeout, "shutdown_timeout", cfg.ShutdownTimeout, "longest SIGTERM drain")
	fs.StringVar(&logLevel, "log_level", "info", "debug, info, warn or error")
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	if fs.NArg() > 0 {
		return cfg, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if err := applyEnv(fs, getenv); err != nil {
		return cfg, err
	}
	p, err := client.ParseProtocol(protocol)
	if err != nil {
		return cfg, err
	}
	cfg.Protocol = p
	if cfg.Receiver.Source == "urn:veil:batcher" {
		if svc := getenv("K_SERVICE"); svc != "" {
			cfg.Receiver.Source += ":" + svc
		}
	}
	cfg.ListenAddress = ":" + port
	if listen != "" {
		cfg.ListenAddress = listen
	}
	if scalerFile != "" {
		b, err := boundedio.ReadFile(scalerFile, maxConfigFileBytes)
		if err != nil {
			return cfg, fmt.Errorf("--scaler: %w", err)
		}
		cfg.ScalerJSON = b
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(logLevel)); err != nil {
		return cfg, fmt.Errorf("--log_level: %w", err)
	}
	cfg.Logger = slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: level}))
	return cfg, nil
}

// applyEnv sets every flag not given on the command line from its
// environment variable, if that is set.
func applyEnv(fs *flag.FlagSet, getenv func(string) string) error {
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if given[f.Name] || err != nil {
			return
		}
		name, ok := envNames[f.Name]
		if !ok {
			name = "VEIL_" + strings.ToUpper(f.Name)
		}
		if v := getenv(name); v != "" {
			if e := fs.Set(f.Name, v); e != nil {
				err = fmt.Errorf("environment %s: %w", name, e)
			}
		}
	})
	return err
}

// maxConfigFileBytes bounds the operator-supplied files the function reads
// (scaler JSON, runtime CA): far above any real one, far below memory trouble.
const maxConfigFileBytes = 1 << 20
