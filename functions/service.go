// Package functions is Veil's on-prem side: a Knative-ready CloudEvents
// function that micro-batches card transactions into the confidential
// runtime and answers with short score events. This package wires the
// parts together (receiver: CloudEvents HTTP; batcher: micro-batching and
// dedup; oipscore + oip/client: the runtime; transaction: payload and
// scaler) and runs the HTTP server with health, metrics and a SIGTERM
// drain that flushes open batches. The generator lives in functions/gen.
//
// It never imports the runtime's packages: the runtime is reached only
// over the Open Inference Protocol.
package functions

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/veil-ai/veil/internal/boundedio"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/veil-ai/veil/functions/batcher"
	"github.com/veil-ai/veil/functions/oipscore"
	"github.com/veil-ai/veil/functions/receiver"
	"github.com/veil-ai/veil/functions/transaction"
	"github.com/veil-ai/veil/models"
	"github.com/veil-ai/veil/oip/client"
)

// Series about the runtime link, besides receiver.Metric*.
const (
	MetricRuntimeBytesSent     = "veil_batcher_runtime_bytes_sent_total"
	MetricRuntimeBytesReceived = "veil_batcher_runtime_bytes_received_total"
)

// Config is the whole batcher configuration (flags and environment are
// mapped onto it by cmd/veil-batcher).
type Config struct {
	ListenAddress string // host:port; Knative sets $PORT
	RuntimeURL    string // the OIP server
	Protocol      client.Protocol
	RuntimeCAFile string // PEM roots for an https runtime ("" = system roots)
	Model         oipscore.Config
	ScalerJSON    []byte // scaler.json (mean_, scale_, feature_order)
	SinkURL       string // K_SINK: send results there instead of replying
	Receiver      receiver.Config
	Batch         batcher.Config // Width is taken from the scaler
	// ShutdownTimeout bounds the SIGTERM drain.
	ShutdownTimeout time.Duration
	Logger          *slog.Logger
}

// DefaultConfig is what the flags default to.
func DefaultConfig() Config {
	return Config{
		ListenAddress: ":8080",
		Protocol:      client.GRPCRaw,
		Model:         oipscore.Config{Model: "fraud", InputName: "dense_input"},
		ScalerJSON:    models.FraudScalerJSON,
		Receiver: receiver.Config{
			Source:         "urn:veil:batcher",
			Threshold:      0.95,
			MaxBodyBytes:   4 << 20,
			MaxBatchEvents: 1000,
		},
		Batch: batcher.Config{
			MaxBatchSize:   64,
			MaxLatency:     10 * time.Millisecond,
			MaxConcurrency: 4,
			QueueSize:      8192,
			RequestTimeout: 5 * time.Second,
			DedupSize:      200_000,
			DedupTTL:       15 * time.Minute,
		},
		ShutdownTimeout: 30 * time.Second,
	}
}

// Service is a configured batcher, ready to serve.
type Service struct {
	cfg      Config
	log      *slog.Logger
	registry *prometheus.Registry
	client   *client.Client
	batcher  *batcher.Batcher
	handler  *receiver.Handler
	mux      *http.ServeMux
}

// New builds the service: runtime client, batcher, receiver and routes.
func New(cfg Config) (*Service, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.RuntimeURL == "" {
		return nil, errors.New("functions: the runtime URL is required (--runtime or VEIL_RUNTIME_URL)")
	}
	scaler, err := transaction.ParseScaler(cfg.ScalerJSON)
	if err != nil {
		return nil, fmt.Errorf("functions: %w", err)
	}
	cfg.Batch.Width = scaler.Width()
	tlsCfg, err := runtimeTLS(cfg.RuntimeCAFile)
	if err != nil {
		return nil, err
	}
	oc, err := client.New(client.Config{URL: cfg.RuntimeURL, Protocol: cfg.Protocol, Timeout: cfg.Batch.RequestTimeout,
		TLS: tlsCfg, MaxResponseBytes: 16 << 20})
	if err != nil {
		return nil, fmt.Errorf("functions: runtime client: %w", err)
	}
	inf, err := oipscore.New(cfg.Model, oc)
	if err != nil {
		oc.Close()
		return nil, err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	metrics, err := receiver.NewMetrics(reg)
	if err != nil {
		oc.Close()
		return nil, fmt.Errorf("functions: metrics: %w", err)
	}
	s := &Service{cfg: cfg, log: cfg.Logger, registry: reg, client: oc}

	var sink receiver.Sink
	if cfg.SinkURL != "" {
		hs, err := receiver.NewHTTPSink(cfg.SinkURL, &http.Client{Timeout: cfg.Batch.RequestTimeout})
		if err != nil {
			oc.Close()
			return nil, err
		}
		sink = hs
	}
	bcfg := cfg.Batch
	bcfg.Observer = func(rows int, took time.Duration, err error) {
		metrics.ObserveBatch(rows, took.Seconds(), err)
		if err != nil {
			s.log.Warn("runtime request failed", "rows", rows, "took", took, "retryable", client.IsRetryable(err), "error", err)
		}
	}
	if cfg.Receiver.SinkBatch {
		if sink == nil {
			oc.Close()
			return nil, errors.New("functions: --sink_batch needs K_SINK (or --sink)")
		}
		bcfg.Publisher = func(ctx context.Context, batch []batcher.Scored) error {
			ev := s.handler.BatchResultEvent(batch)
			if err := sink.Send(ctx, []event.Event{ev}); err != nil {
				return err
			}
			metrics.ResultsOut.WithLabelValues("sink_batch").Add(float64(len(batch)))
			metrics.BytesOut.Add(float64(receiver.EventWireBytes(&ev)))
			return nil
		}
	}
	b, err := batcher.New(bcfg, inf)
	if err != nil {
		oc.Close()
		return nil, fmt.Errorf("functions: %w", err)
	}
	s.batcher = b
	reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "veil_batcher_queue_rows", Help: "Rows waiting for a batch."},
			func() float64 { return float64(b.QueueLen()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "veil_batcher_dedup_entries", Help: "Results remembered for redeliveries."},
			func() float64 { return float64(b.CacheLen()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: MetricRuntimeBytesSent,
			Help: "Bytes sent to the runtime (REST bodies or gRPC messages)."},
			func() float64 { return float64(oc.Traffic().Sent) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: MetricRuntimeBytesReceived,
			Help: "Bytes received from the runtime: the cloud egress."},
			func() float64 { return float64(oc.Traffic().Received) }),
	)
	h, err := receiver.NewHandler(cfg.Receiver, scaler, b, sink, metrics, cfg.Logger)
	if err != nil {
		_ = b.Close(context.Background())
		oc.Close()
		return nil, err
	}
	s.handler = h
	s.mux = http.NewServeMux()
	s.mux.HandleFunc("GET /health/liveness", h.Liveness)
	s.mux.HandleFunc("GET /health/readiness", h.Readiness)
	s.mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	s.mux.Handle("/", h)
	return s, nil
}

// Handler is the service's HTTP handler (events, health, metrics).
func (s *Service) Handler() http.Handler { return s.mux }

// Registry is the service's own Prometheus registry.
func (s *Service) Registry() *prometheus.Registry { return s.registry }

// Serve answers on l until ctx ends, then drains: readiness turns 503,
// open batches are sent at once, in-flight requests get their answers,
// and the runtime connection is closed.
func (s *Service) Serve(ctx context.Context, l net.Listener) error {
	srv := &http.Server{
		Handler:           s.mux,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		// A request waits for its batch and the runtime's answer.
		WriteTimeout: s.cfg.Batch.MaxLatency + 2*s.cfg.Batch.RequestTimeout + 10*time.Second,
		IdleTimeout:  90 * time.Second,
		ErrorLog:     slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(l) }()
	s.log.Info("veil-batcher listening", "address", l.Addr().String(), "runtime", s.cfg.RuntimeURL,
		"protocol", s.cfg.Protocol, "model", s.cfg.Model.Model, "sink", s.cfg.SinkURL != "")
	select {
	case err := <-errc:
		s.shutdown(context.Background())
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	s.log.Info("draining: flushing open batches")
	s.handler.SetReady(false)
	s.batcher.Drain()
	dctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
	defer cancel()
	err := srv.Shutdown(dctx)
	s.shutdown(dctx)
	if err != nil {
		return fmt.Errorf("drain: %w", err)
	}
	s.log.Info("drained")
	return nil
}

func (s *Service) shutdown(ctx context.Context) {
	if err := s.batcher.Close(ctx); err != nil {
		s.log.Warn("batcher close", "error", err)
	}
	_ = s.client.Close()
}

// Run listens on cfg.ListenAddress and serves until ctx ends.
func Run(ctx context.Context, cfg Config) error {
	s, err := New(cfg)
	if err != nil {
		return err
	}
	l, err := net.Listen("tcp", cfg.ListenAddress)
	if err != nil {
		s.shutdown(context.Background())
		return fmt.Errorf("listen %s: %w", cfg.ListenAddress, err)
	}
	return s.Serve(ctx, l)
}

func runtimeTLS(caFile string) (*tls.Config, error) {
	if caFile == "" {
		return nil, nil
	}
	pem, err := boundedio.ReadFile(caFile, maxConfigFileBytes)
	if err != nil {
		return nil, fmt.Errorf("functions: runtime CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("functions: runtime CA %s holds no PEM certificate", caFile)
	}
	return &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}, nil
}

// Handle scores one decoded event (see receiver.Handler.Handle), for hosts
// that serve HTTP themselves, such as the Knative Functions scaffolding.
func (s *Service) Handle(ctx context.Context, ev event.Event) (*event.Event, error) {
	return s.handler.Handle(ctx, ev)
}

// Close drains without an HTTP server of our own: refuses readiness, sends
// open batches at once and waits for them, then closes the runtime client.
func (s *Service) Close(ctx context.Context) error {
	s.handler.SetReady(false)
	s.batcher.Drain()
	err := s.batcher.Close(ctx)
	_ = s.client.Close()
	return err
}
