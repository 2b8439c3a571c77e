// Package server is veil-runtime's Open Inference Protocol server: REST
// (with Triton's binary tensor data extension and KServe v1), gRPC on its
// own port and over h2c on the HTTP port, Prometheus metrics, and a model
// supplied by a pluggable Loader after the server is already live.
//
// Seams for other features (all in Config):
//   - Loader: func(ctx, *onnx.Env) (*LoadedModel, error) produces the model
//     in the background once the server listens (live at once, ready when it
//     returns; an error is logged and the server stays unready). DirLoader
//     is the plain-ONNX default; sealed models supply their own, reading
//     bytes with modeldir and creating the model with env.NewModel.
//   - NewEngine: func(Model) (Engine, error) wraps the model for inference,
//     e.g. in runtime/batch; Engine.Infer returns every output and the
//     server selects the requested ones.
//   - Registry: a Prometheus registry to share /metrics with.
//
// Endpoints: GET /v2/health/{live,ready}, GET /v2, GET /v2/models,
// GET /v2/models/{m}[/versions/{v}][/ready], POST .../infer, GET /v1/models,
// GET /v1/models/{m}, POST /v1/models/{m}:predict, GET /metrics, GET /;
// gRPC inference.GRPCInferenceService (six RPCs) and grpc.health.v1.
package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"

	"github.com/veil-ai/veil/oip"
	"github.com/veil-ai/veil/runtime/onnx"
)

// extensions are reported in server metadata: the binary tensor data
// extension, KServe v1, and gRPC served on the HTTP port (h2c) as well.
func extensions() []string {
	return []string{oip.ExtensionBinaryTensorData, "kserve_v1", "grpc_on_http_port"}
}

// Server is a running veil-runtime.
type Server struct {
	cfg     Config
	log     *slog.Logger
	metrics *metrics
	env     *onnx.Env
	ownEnv  bool

	httpLis, grpcLis net.Listener
	httpSrv          *http.Server
	grpcSrv          *grpc.Server
	health           *health.Server

	model    atomic.Pointer[served]
	draining atomic.Bool
	// httpInFlight counts requests on the HTTP port (REST and h2c gRPC).
	httpInFlight atomic.Int64
	loadErr      atomic.Pointer[error]
	loaded       chan struct{}

	done    chan struct{}
	waitErr error
}

// Run serves until ctx ends (SIGTERM in main), then drains in-flight
// requests and returns.
func Run(ctx context.Context, cfg Config) error {
	s, err := Start(ctx, cfg)
	if err != nil {
		return err
	}
	return s.Wait()
}

// Start listens on both ports, starts the loader in the background and
// returns; the server shuts down when ctx ends.
func Start(ctx context.Context, cfg Config) (*Server, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("server config: %w", err)
	}
	s := &Server{cfg: cfg, log: cfg.Logger, metrics: newMetrics(cfg.Registry), env: cfg.Env, loaded: make(chan struct{}), done: make(chan struct{})}
	if s.env == nil {
		lib, err := onnx.FindLibrary(cfg.ORTLibrary)
		if err != nil {
			return nil, err
		}
		if s.env, err = onnx.NewEnv(lib); err != nil {
			return nil, err
		}
		s.ownEnv = true
		s.log.Info("onnxruntime loaded", "library", lib, "version", s.env.Version())
	}
	if s.httpLis, err = net.Listen("tcp", net.JoinHostPort(cfg.Host, strconv.Itoa(cfg.HTTPPort))); err != nil {
		s.closeEnv()
		return nil, fmt.Errorf("listen on http port: %w", err)
	}
	if s.grpcLis, err = net.Listen("tcp", net.JoinHostPort(cfg.Host, strconv.Itoa(cfg.GRPCPort))); err != nil {
		s.httpLis.Close()
		s.closeEnv()
		return nil, fmt.Errorf("listen on grpc port: %w", err)
	}
	s.health = newHealth(cfg.ModelName)
	s.grpcSrv = s.newGRPCServer()
	s.httpSrv = s.newHTTPServer()
	s.log.Info("serving", "model_name", cfg.ModelName, "http", s.httpLis.Addr().String(), "grpc", s.grpcLis.Addr().String())

	serveErrs := make(chan error, 2)
	go func() { serveErrs <- ignoreClosed(s.httpSrv.Serve(s.httpLis)) }()
	go func() { serveErrs <- ignoreClosed(s.grpcSrv.Serve(s.grpcLis)) }()

	loadCtx, cancelLoad := context.WithCancel(ctx)
	go s.load(loadCtx)
	go func() {
		var serveErr error
		select {
		case <-ctx.Done():
		case serveErr = <-serveErrs:
			s.log.Error("listener failed", "error", serveErr)
		}
		cancelLoad()
		s.waitErr = errors.Join(serveErr, s.shutdown())
		close(s.done)
	}()
	return s, nil
}

func ignoreClosed(err error) error {
	if err == nil || errors.Is(err, http.ErrServerClosed) || errors.Is(err, grpc.ErrServerStopped) || errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}

// HTTPAddr and GRPCAddr are the listening addresses.
func (s *Server) HTTPAddr() string { return s.httpLis.Addr().String() }

// GRPCAddr is the gRPC port's listening address.
func (s *Server) GRPCAddr() string { return s.grpcLis.Addr().String() }

// Loaded is closed once the loader has finished, successfully or not.
func (s *Server) Loaded() <-chan struct{} { return s.loaded }

// Wait blocks until the server has shut down.
func (s *Server) Wait() error {
	<-s.done
	return s.waitErr
}

// load runs the loader once; its panic or error leaves the server unready.
func (s *Server) load(ctx context.Context) {
	defer close(s.loaded)
	start := time.Now()
	loader := s.cfg.Loader
	if loader == nil {
		loader = DirLoader(s.cfg.ModelDir, s.cfg.ModelOptions())
	}
	sv, err := s.runLoader(ctx, loader)
	if err != nil {
		s.loadErr.Store(&err)
		s.log.Error("model load failed; staying unready", "model_name", s.cfg.ModelName, "error", err, "seconds", time.Since(start).Seconds())
		return
	}
	s.model.Store(sv)
	s.setServing(true)
	s.log.Info("model ready", "model_name", s.cfg.ModelName, "version", sv.version,
		"inputs", len(sv.model.Inputs()), "outputs", len(sv.model.Outputs()), "seconds", time.Since(start).Seconds())
}

func (s *Server) runLoader(ctx context.Context, loader Loader) (sv *served, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("model loader panicked: %v", p)
		}
	}()
	lm, err := loader(ctx, s.env)
	if err != nil {
		return nil, err
	}
	if lm == nil || lm.Model == nil {
		return nil, errors.New("model loader returned no model")
	}
	if ctx.Err() != nil {
		// Shutdown began while loading: nobody will close it later.
		_ = lm.Model.Close()
		return nil, ctx.Err()
	}
	sv = &served{model: lm.Model, engine: lm.Model, version: lm.Version}
	if sv.version == "" {
		sv.version = "1"
	}
	if s.cfg.NewEngine != nil {
		if sv.engine, err = s.cfg.NewEngine(lm.Model); err != nil {
			_ = lm.Model.Close()
			return nil, fmt.Errorf("create inference engine: %w", err)
		}
	}
	return sv, nil
}

// shutdown stops accepting work, waits for in-flight requests (bounded by
// ShutdownGrace), then releases engine, model and environment.
func (s *Server) shutdown() error {
	s.draining.Store(true)
	s.health.Shutdown()
	s.log.Info("shutting down: draining in-flight requests", "grace", s.cfg.ShutdownGrace.String())
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownGrace)
	defer cancel()
	var wg sync.WaitGroup
	var httpErr error
	wg.Add(2)
	go func() {
		defer wg.Done()
		httpErr = s.drainHTTP(ctx)
	}()
	go func() {
		defer wg.Done()
		stopped := make(chan struct{})
		go func() { s.grpcSrv.GracefulStop(); close(stopped) }()
		select {
		case <-stopped:
		case <-ctx.Done():
			s.grpcSrv.Stop()
		}
	}()
	wg.Wait()
	var errs []error
	if httpErr != nil {
		errs = append(errs, fmt.Errorf("drain http: %w", httpErr))
	}
	// The loader saw its context end; one that ignores it must not hold
	// the process past the grace period. Its model and the environment
	// are then left to the process exit.
	select {
	case <-s.loaded:
	case <-ctx.Done():
		s.log.Warn("model loader still running after the grace period; exiting without waiting for it")
		return errors.Join(append(errs, errors.New("model loader did not stop"))...)
	}
	if sv := s.model.Load(); sv != nil {
		if sv.engine != Engine(sv.model) {
			errs = append(errs, closeEngine(sv.engine))
		}
		errs = append(errs, sv.model.Close())
	}
	if err := s.closeEnv(); err != nil {
		errs = append(errs, err)
	}
	s.log.Info("shut down")
	return errors.Join(errs...)
}

// drainHTTP shuts the HTTP server down gracefully. Shutdown waits for
// every connection to go idle, but an HTTP/2 client (gRPC on the HTTP
// port) may keep its connection open after the GOAWAY; so once no request
// has been in flight for a moment, whatever is left is closed.
func (s *Server) drainHTTP(ctx context.Context) error {
	done := make(chan error, 1)
	go func() { done <- s.httpSrv.Shutdown(ctx) }()
	tick := time.NewTicker(25 * time.Millisecond)
	defer tick.Stop()
	quiet := 0
	for {
		select {
		case err := <-done:
			return err
		case <-tick.C:
			if s.httpInFlight.Load() != 0 {
				quiet = 0
				continue
			}
			if quiet++; quiet >= 4 {
				_ = s.httpSrv.Close()
				return ignoreClosed(<-done)
			}
		}
	}
}

// closeEngine stops a wrapping engine (a batcher's Close may or may not
// return an error).
func closeEngine(e Engine) error {
	switch c := e.(type) {
	case io.Closer:
		return c.Close()
	case interface{ Close() }:
		c.Close()
	}
	return nil
}

func (s *Server) closeEnv() error {
	if s.ownEnv {
		return s.env.Close()
	}
	return nil
}

// ready reports whether the model is loaded and the server not draining.
func (s *Server) ready() bool { return s.model.Load() != nil && !s.draining.Load() }

// lookup finds the served model by name and optional version.
func (s *Server) lookup(name, version string) (*served, error) {
	if name != s.cfg.ModelName {
		return nil, notFoundf("model %q not found (this server serves %q)", name, s.cfg.ModelName)
	}
	sv := s.model.Load()
	if sv == nil || s.draining.Load() {
		return nil, notReadyf("model %q is not ready (%s)", name, s.notReadyReason())
	}
	if version != "" && version != sv.version {
		return nil, notFoundf("model %q version %q not found (loaded version is %q)", name, version, sv.version)
	}
	return sv, nil
}

// metadata is the model's OIP metadata.
func (s *Server) metadata(sv *served) oip.ModelMetadata {
	return oip.ModelMetadata{Name: s.cfg.ModelName, Versions: []string{sv.version}, Platform: onnx.Platform,
		Inputs: sv.model.Inputs(), Outputs: sv.model.Outputs()}
}

func (s *Server) serverMetadata() oip.ServerMetadata {
	return oip.ServerMetadata{Name: s.cfg.ServerName, Version: s.cfg.ServerVersion, Extensions: extensions()}
}

// infer runs one request on the served model and selects its outputs.
func (s *Server) infer(ctx context.Context, name, version string, req *oip.InferRequest) (*oip.InferResponse, error) {
	sv, err := s.lookup(name, version)
	if err != nil {
		return nil, err
	}
	outMeta := sv.model.Outputs()
	for _, o := range req.Outputs {
		if indexOf(outMeta, o.Name) < 0 {
			return nil, fmt.Errorf("%w: unknown requested output %q", oip.ErrInvalid, o.Name)
		}
	}
	start := time.Now()
	outs, err := sv.engine.Infer(ctx, req.Inputs)
	s.metrics.predict.WithLabelValues(name).Observe(time.Since(start).Seconds())
	if err != nil {
		return nil, err
	}
	resp := &oip.InferResponse{ModelName: name, ModelVersion: sv.version, ID: req.ID}
	if len(req.Outputs) == 0 {
		resp.Outputs = outs
		return resp, nil
	}
	for _, o := range req.Outputs {
		found := false
		for _, t := range outs {
			if t.Name == o.Name {
				resp.Outputs = append(resp.Outputs, t)
				found = true
				break
			}
		}
		if !found {
			return nil, fmt.Errorf("engine returned no output %q", o.Name)
		}
	}
	return resp, nil
}

func indexOf(ts []oip.TensorMetadata, name string) int {
	for i, t := range ts {
		if t.Name == name {
			return i
		}
	}
	return -1
}
