package server

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/veil-ai/veil/runtime/onnx"
)

// Config is everything the server needs; cmd/veil-runtime fills it from
// flags. Zero values mean the defaults noted on each field.
type Config struct {
	// ModelName is the name the model is served under ("model").
	ModelName string
	// ModelDir is the KServe model directory ("/mnt/models"), used by the
	// default loader.
	ModelDir string
	// Host is the listen address for both ports ("" = all interfaces).
	Host string
	// HTTPPort serves REST, /metrics and gRPC over h2c (8080; 0 picks a
	// free port when ListenEphemeral is set).
	HTTPPort int
	// GRPCPort serves gRPC (8081).
	GRPCPort int
	// ListenEphemeral makes port 0 mean "any free port" (tests) instead
	// of the default port.
	ListenEphemeral bool
	// ORTLibrary is the onnxruntime library path (see onnx.FindLibrary).
	ORTLibrary string
	// Env, if set, is used instead of creating an onnxruntime environment
	// from ORTLibrary; the caller keeps ownership.
	Env *onnx.Env
	// MaxRequestBytes bounds REST bodies and gRPC messages (64 MiB).
	MaxRequestBytes int64
	// IntraOpThreads for the default loader (0 = cgroup CPU quota).
	IntraOpThreads int
	// IntraOpSpinning lets onnxruntime's idle intra-op threads busy-wait.
	IntraOpSpinning bool
	// ShutdownGrace bounds how long SIGTERM waits for in-flight requests
	// (30 s, KServe's grace period).
	ShutdownGrace time.Duration
	// Logger receives structured logs (slog.Default()).
	Logger *slog.Logger
	// Loader produces the model after the server is listening (default:
	// DirLoader over ModelDir). Sealed models plug in here.
	Loader Loader
	// NewEngine wraps the loaded model for inference, e.g. in a batcher
	// (default: the model itself). If the Engine has a Close method, it
	// is called at shutdown before the model is closed.
	NewEngine func(Model) (Engine, error)
	// Registry, if set, is the Prometheus registry served on /metrics, so
	// that components outside the server (the batcher) can add their series
	// beside the server's own; nil means a fresh registry.
	Registry *prometheus.Registry
	// ServerName and ServerVersion are reported by server metadata.
	ServerName    string
	ServerVersion string
}

// Defaults for Config.
const (
	DefaultModelName       = "model"
	DefaultModelDir        = "/mnt/models"
	DefaultHTTPPort        = 8080
	DefaultGRPCPort        = 8081
	DefaultMaxRequestBytes = 64 << 20
	DefaultShutdownGrace   = 30 * time.Second
	DefaultServerName      = "veil-runtime"
)

// withDefaults fills zero fields and checks the rest.
func (c Config) withDefaults() (Config, error) {
	if c.ModelName == "" {
		c.ModelName = DefaultModelName
	}
	if c.ModelDir == "" {
		c.ModelDir = DefaultModelDir
	}
	if c.HTTPPort == 0 && !c.ListenEphemeral {
		c.HTTPPort = DefaultHTTPPort
	}
	if c.GRPCPort == 0 && !c.ListenEphemeral {
		c.GRPCPort = DefaultGRPCPort
	}
	if c.MaxRequestBytes == 0 {
		c.MaxRequestBytes = DefaultMaxRequestBytes
	}
	if c.ShutdownGrace == 0 {
		c.ShutdownGrace = DefaultShutdownGrace
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.ServerName == "" {
		c.ServerName = DefaultServerName
	}
	if c.ServerVersion == "" {
		c.ServerVersion = "dev"
	}
	var errs []error
	for _, p := range []struct {
		name string
		v    int
	}{{"http port", c.HTTPPort}, {"grpc port", c.GRPCPort}} {
		if p.v < 0 || p.v > 65535 {
			errs = append(errs, fmt.Errorf("%s %d out of range", p.name, p.v))
		}
	}
	if c.HTTPPort == c.GRPCPort && c.HTTPPort != 0 {
		errs = append(errs, fmt.Errorf("http and grpc ports are both %d (gRPC is served on the HTTP port too; give the gRPC port its own number)", c.HTTPPort))
	}
	if c.MaxRequestBytes < 0 || c.MaxRequestBytes > 2<<30-1 {
		errs = append(errs, fmt.Errorf("max request bytes %d out of range (1..2 GiB)", c.MaxRequestBytes))
	}
	if c.IntraOpThreads < 0 {
		errs = append(errs, fmt.Errorf("intra-op threads %d is negative", c.IntraOpThreads))
	}
	return c, errors.Join(errs...)
}

// ModelOptions are the onnxruntime session options the configuration asks
// for, shared by every loader (plain or sealed).
func (c Config) ModelOptions() onnx.Options {
	return onnx.Options{IntraOpThreads: c.IntraOpThreads, IntraOpSpinning: c.IntraOpSpinning}
}
