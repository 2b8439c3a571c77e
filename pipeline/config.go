package pipeline

import (
	"errors"
	"fmt"
	"io"
	"time"
)

// Config is everything `veil run` can be told. Zero ports mean "pick a
// free loopback port".
type Config struct {
	BinDir   string // where veil, veil-runtime and veil-batcher are (beside the veil executable)
	ModelDir string // model to seal; "" = the embedded fraud model (veil seal's default)

	Count     int     // transactions to send
	Rate      float64 // transactions per second; 0 = as fast as Senders allow
	Seed      uint64  // generator seed: the same seed gives the same transactions
	FraudRate float64 // share of fraudulent transactions
	Senders   int     // events in flight

	MaxBatchSize int           // the batcher's --max_batch_size
	MaxLatency   time.Duration // the batcher's --max_latency
	Protocol     string        // the batcher's --protocol: grpc-raw or rest-binary
	Alg          string        // veil seal --alg: A256KW or dir

	ResourceID string // where the key is stored in the KBS
	ModelName  string

	KBSPort, RuntimeHTTPPort, RuntimeGRPCPort, BatcherPort, SinkPort int

	StartTimeout  time.Duration // for each child to become ready (the runtime's includes attestation)
	ResultTimeout time.Duration // for the last result after the last send
	StopGrace     time.Duration // SIGTERM → SIGKILL

	ReportPath  string // HTML report; "" = none
	SummaryJSON string // machine-readable summary; "" = none
	ResultsPath string // JSON lines, one per transaction (id, truth, score, latency); "" = none

	Verbose  bool      // echo the children's logs
	Terminal bool      // stdout is a terminal (progress bar redraws in place)
	Stdout   io.Writer // the narrative, the progress bar and the summary
	Stderr   io.Writer // children's logs with Verbose
}

// Defaults used by `veil run`.
const (
	DefaultCount        = 20000
	DefaultSeed         = 42
	DefaultFraudRate    = 0.086 // the dataset's, per DATA.md
	DefaultSenders      = 128
	DefaultMaxBatchSize = 64
	DefaultMaxLatency   = 5 * time.Millisecond
	DefaultProtocol     = "grpc-raw"
	DefaultAlg          = "A256KW"
	DefaultResourceID   = "kbs:///default/veil/fraud-model-key"
	DefaultModelName    = "fraud"
	DefaultReportPath   = "out/veil-run-report.html"
)

// DefaultConfig is `veil run` with no flags.
func DefaultConfig() Config {
	return Config{
		Count: DefaultCount, Seed: DefaultSeed, FraudRate: DefaultFraudRate, Senders: DefaultSenders,
		MaxBatchSize: DefaultMaxBatchSize, MaxLatency: DefaultMaxLatency, Protocol: DefaultProtocol,
		Alg: DefaultAlg, ResourceID: DefaultResourceID, ModelName: DefaultModelName,
		StartTimeout: 2 * time.Minute, ResultTimeout: time.Minute, StopGrace: 10 * time.Second,
		ReportPath: DefaultReportPath,
	}
}

// Validate reports the first setting that cannot work.
func (c Config) Validate() error {
	switch {
	case c.BinDir == "":
		return errors.New("no binary directory")
	case c.Count <= 0:
		return fmt.Errorf("count %d: want at least 1", c.Count)
	case c.Rate < 0:
		return fmt.Errorf("rate %g: want 0 (unlimited) or more", c.Rate)
	case !(c.FraudRate > 0 && c.FraudRate <= 1):
		return fmt.Errorf("fraud rate %g: want more than 0, at most 1", c.FraudRate)
	case c.Senders <= 0:
		return fmt.Errorf("senders %d: want at least 1", c.Senders)
	case c.MaxBatchSize <= 0:
		return fmt.Errorf("max batch size %d: want at least 1", c.MaxBatchSize)
	case c.MaxLatency <= 0:
		return fmt.Errorf("max latency %v: want more than 0", c.MaxLatency)
	case c.Protocol != "grpc-raw" && c.Protocol != "rest-binary":
		return fmt.Errorf("protocol %q: want grpc-raw or rest-binary", c.Protocol)
	case c.Alg != "A256KW" && c.Alg != "dir":
		return fmt.Errorf("alg %q: want A256KW or dir", c.Alg)
	case c.StartTimeout <= 0 || c.ResultTimeout <= 0 || c.StopGrace <= 0:
		return errors.New("timeouts must be positive")
	case c.Stdout == nil:
		return errors.New("no stdout")
	}
	for _, p := range []int{c.KBSPort, c.RuntimeHTTPPort, c.RuntimeGRPCPort, c.BatcherPort, c.SinkPort} {
		if p < 0 || p > 65535 {
			return fmt.Errorf("port %d out of range", p)
		}
	}
	return nil
}
