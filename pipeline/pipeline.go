// Package pipeline runs Veil's whole confidential fraud-scoring pipeline
// on one machine, for `veil run`: it seals the bundled model with a fresh
// key, starts the development KBS and uploads the key, cold-starts the
// runtime on the sealed model (sample TEE: development only), starts the
// batcher with a local CloudEvents sink as K_SINK, sends generated
// transactions and reports what came back against the generator's ground
// truth. Every child runs in its own process group and is stopped with
// SIGTERM (then SIGKILL) on every exit path, Ctrl-C included; the private
// temp dir holding the sealed model, key and admin token is removed.
package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Result is a finished run: the summary and the raw material behind it.
type Result struct {
	Summary Summary
	Sent    []Sent
	First   map[string]Arrival // first result per transaction id
	Outcome Outcome
	TempDir string // removed by the time Run returns
}

// run is one pipeline run's state.
type run struct {
	cfg    Config
	out    io.Writer
	http   *http.Client
	tmp    string
	procs  []*proc // started children, in start order
	sink   *Sink
	result *Result
}

// Run runs the pipeline to the end, or until ctx is cancelled; either way
// it stops every child and removes its temp dir before returning.
func Run(ctx context.Context, cfg Config) (res *Result, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	r := &run{cfg: cfg, out: cfg.Stdout, http: &http.Client{Timeout: 5 * time.Second}, result: &Result{}}
	defer func() {
		cerr := r.cleanup()
		if cerr == nil && err != nil && errors.Is(ctx.Err(), context.Canceled) {
			fmt.Fprintln(r.out, "interrupted: every process stopped, temp files removed")
		}
		err = errors.Join(err, cerr)
	}()
	if err := r.steps(ctx); err != nil {
		return nil, err
	}
	return r.result, nil
}

func (r *run) printf(format string, args ...any) { fmt.Fprintf(r.out, format, args...) }

func (r *run) steps(ctx context.Context) error {
	for _, name := range []string{"veil", "veil-runtime", "veil-batcher"} {
		if _, err := os.Stat(filepath.Join(r.cfg.BinDir, name)); err != nil {
			return fmt.Errorf("%s not found in %s (run `make build`, or pass --bin_dir): %w", name, r.cfg.BinDir, err)
		}
	}
	r.printf("veil run: DEVELOPMENT ONLY. The key is released to the `sample` TEE, which proves nothing\n" +
		"(--insecure_allow_sample_tee). Production attests with Intel TDX evidence.\n\n")
	tmp, err := os.MkdirTemp("", "veil-run-*")
	if err != nil {
		return fmt.Errorf("private temp dir: %w", err)
	}
	r.tmp, r.result.TempDir = tmp, tmp
	if err := os.Chmod(tmp, 0o700); err != nil {
		return fmt.Errorf("private temp dir: %w", err)
	}

	kbsURL, err := r.sealAndStoreKey(ctx)
	if err != nil {
		return err
	}
	rt, err := r.startRuntime(ctx, kbsURL)
	if err != nil {
		return err
	}
	batcherURL, batcherMetrics, err := r.startBatcher(ctx, rt)
	if err != nil {
		return err
	}
	return r.score(ctx, rt, batcherURL, batcherMetrics)
}

// sealAndStoreKey is step 1: seal with a fresh key, start the KBS, upload
// the key, delete the key file.
func (r *run) sealAndStoreKey(ctx context.Context) (kbsURL string, err error) {
	veil := filepath.Join(r.cfg.BinDir, "veil")
	sealed := filepath.Join(r.tmp, "sealed")
	keyFile := filepath.Join(r.tmp, "model.key")
	tokenFile := filepath.Join(r.tmp, "kbs-admin-token")
	// The key file is removed as soon as the KBS holds the key, and on
	// every failure path by the temp dir's removal.
	defer os.Remove(keyFile)

	args := []string{"seal", "--out", sealed, "--key", keyFile, "--alg", r.cfg.Alg, "--resource_id", r.cfg.ResourceID}
	model := "the embedded fraud model"
	if r.cfg.ModelDir != "" {
		args = append(args, "--in", r.cfg.ModelDir)
		model = r.cfg.ModelDir
	}
	start := time.Now()
	if err := r.runOnce(ctx, "veil seal", veil, args...); err != nil {
		return "", err
	}
	r.printf("[1/5] sealed %s with a fresh 256-bit key (JWE %s) in a private temp dir (%s)\n",
		model, r.cfg.Alg, since(start))

	kbs, err := r.startChild("veil kbs", veil, nil, "kbs", "serve",
		"--addr", loopback(r.cfg.KBSPort), "--admin_token_file", tokenFile, "--insecure_allow_sample_tee")
	if err != nil {
		return "", err
	}
	wctx, cancel := context.WithTimeout(ctx, r.cfg.StartTimeout)
	defer cancel()
	line, err := kbs.waitLine(wctx, func(s string) bool { return strings.HasPrefix(s, "listening on http://") })
	if err != nil {
		return "", fmt.Errorf("development KBS: %w", err)
	}
	kbsURL = strings.TrimPrefix(line, "listening on ")
	if err := r.waitHTTP(wctx, kbs, kbsURL+"/healthz"); err != nil {
		return "", fmt.Errorf("development KBS: %w", err)
	}
	if err := r.runOnce(ctx, "veil kbs upload", veil, "kbs", "upload", "--kbs_url", kbsURL,
		"--admin_token_file", tokenFile, "--resource_id", r.cfg.ResourceID, "--in", keyFile); err != nil {
		return "", err
	}
	if err := os.Remove(keyFile); err != nil {
		return "", fmt.Errorf("remove key file: %w", err)
	}
	r.endpoint("kbs", kbsURL)
	r.printf("[1/5] development KBS (DEVELOPMENT ONLY) on %s holds the key as %s; key file deleted\n",
		kbsURL, r.cfg.ResourceID)
	return kbsURL, nil
}

// runtimeEndpoints is where the runtime answers.
type runtimeEndpoints struct {
	httpURL  string // REST base, e.g. http://127.0.0.1:8081
	grpcAddr string // host:port
	child    *proc
}

// startRuntime is step 2: cold-start the runtime on the sealed model.
func (r *run) startRuntime(ctx context.Context, kbsURL string) (runtimeEndpoints, error) {
	var rt runtimeEndpoints
	start := time.Now()
	fixed := r.cfg.RuntimeHTTPPort != 0 && r.cfg.RuntimeGRPCPort != 0
	child, err := r.startListening(ctx, "runtime cold start", fixed, func() (*proc, string, error) {
		httpPort, err := portOrFree(r.cfg.RuntimeHTTPPort)
		if err != nil {
			return nil, "", err
		}
		grpcPort, err := portOrFree(r.cfg.RuntimeGRPCPort)
		if err != nil {
			return nil, "", err
		}
		rt.httpURL, rt.grpcAddr = "http://"+loopback(httpPort), loopback(grpcPort)
		start = time.Now()
		p, err := r.startChild("veil-runtime", filepath.Join(r.cfg.BinDir, "veil-runtime"), nil,
			"--model_dir", filepath.Join(r.tmp, "sealed"), "--model_name", r.cfg.ModelName, "--host", "127.0.0.1",
			"--http_port", strconv.Itoa(httpPort), "--grpc_port", strconv.Itoa(grpcPort),
			"--resource_id", r.cfg.ResourceID, "--key_source", "kbs", "--kbs_url", kbsURL,
			"--tee", "sample", "--insecure_allow_sample_tee")
		return p, rt.httpURL + "/v2/health/ready", err
	})
	if err != nil {
		return rt, err
	}
	rt.child = child
	ready := time.Since(start)
	r.endpoint("runtime_http", rt.httpURL)
	r.endpoint("runtime_grpc", rt.grpcAddr)
	phases, err := r.coldStart(ctx, rt)
	if err != nil {
		slog.Warn("cold-start phases unavailable", "err", err)
	}
	r.result.Summary.ColdStart = phases
	r.printf("[2/5] veil-runtime ready in %s: attested (sample TEE, INSECURE), fetched the key, decrypted in memory\n", round(ready))
	if len(phases) > 0 {
		r.printf("      cold start: %s\n", formatPhases(phases))
	}
	return rt, nil
}

// startBatcher is step 3: the sink, then the batcher pointed at the runtime.
func (r *run) startBatcher(ctx context.Context, rt runtimeEndpoints) (url, metricsURL string, err error) {
	r.sink, err = NewSink(loopback(r.cfg.SinkPort))
	if err != nil {
		return "", "", err
	}
	r.sink.Serve()
	// oip/client takes http:// for plaintext gRPC too; the protocol flag
	// picks the transport.
	runtimeURL := rt.httpURL
	if r.cfg.Protocol == "grpc-raw" {
		runtimeURL = "http://" + rt.grpcAddr
	}
	_, err = r.startListening(ctx, "batcher", r.cfg.BatcherPort != 0, func() (*proc, string, error) {
		port, err := portOrFree(r.cfg.BatcherPort)
		if err != nil {
			return nil, "", err
		}
		url = "http://" + loopback(port)
		p, err := r.startChild("veil-batcher", filepath.Join(r.cfg.BinDir, "veil-batcher"),
			[]string{"K_SINK=" + r.sink.URL()},
			"--listen_address", loopback(port), "--runtime", runtimeURL, "--model_name", r.cfg.ModelName,
			"--protocol", r.cfg.Protocol, "--max_batch_size", strconv.Itoa(r.cfg.MaxBatchSize),
			"--max_latency", r.cfg.MaxLatency.String())
		return p, url + batcherReadyPath, err
	})
	if err != nil {
		return "", "", err
	}
	r.endpoint("batcher", url)
	r.endpoint("sink", r.sink.URL())
	r.printf("[3/5] veil-batcher on %s → runtime %s (%s, batches of up to %d rows or %s); results → local sink %s\n",
		url, runtimeURL, r.cfg.Protocol, r.cfg.MaxBatchSize, r.cfg.MaxLatency, r.sink.URL())
	return url, url + batcherMetricsPath, nil
}

// bindAttempts bounds restarts after a lost port race: a port found free
// can be taken by another process before the child binds it.
const bindAttempts = 3

// startListening launches a server child (launch picks its ports and
// returns its readiness URL) and waits until it is ready. A child that
// exited because its port was taken meanwhile is started again on other
// ports, unless the ports were fixed by flags.
func (r *run) startListening(ctx context.Context, what string, fixedPorts bool, launch func() (*proc, string, error)) (*proc, error) {
	for attempt := 1; ; attempt++ {
		p, readyURL, err := launch()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		wctx, cancel := context.WithTimeout(ctx, r.cfg.StartTimeout)
		err = r.waitHTTP(wctx, p, readyURL)
		cancel()
		if err == nil {
			return p, nil
		}
		exited, _ := p.exited()
		if fixedPorts || !exited || attempt == bindAttempts || !lostPortRace(p) {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		slog.Warn("port taken before the child bound it; retrying on other ports", "child", p.spec.name, "attempt", attempt)
	}
}

func lostPortRace(p *proc) bool {
	_, found := p.out.find(func(s string) bool { return strings.Contains(s, "address already in use") })
	return found
}

// The batcher's probe and metrics paths.
const (
	batcherReadyPath   = "/health/readiness"
	batcherMetricsPath = "/metrics"
)

// score is steps 4 and 5: send, wait for every result, summarize.
func (r *run) score(ctx context.Context, rt runtimeEndpoints, batcherURL, batcherMetrics string) error {
	txs, err := GenerateTransactions(r.cfg.Count, r.cfg.Seed, r.cfg.FraudRate)
	if err != nil {
		return err
	}
	rateText := "as fast as the batcher answers"
	if r.cfg.Rate > 0 {
		rateText = fmt.Sprintf("at %g/s", r.cfg.Rate)
	}
	r.printf("[4/5] sending %d transactions (seed %d, %.1f %% fraud) as CloudEvents %s, %d in flight\n",
		len(txs), r.cfg.Seed, r.cfg.FraudRate*100, rateText, r.cfg.Senders)
	progress := NewProgress(r.out, "sent", len(txs), r.cfg.Terminal)
	sent, err := sendAll(ctx, LoadConfig{
		Target: batcherURL, Source: "veil-run/generator", Rate: r.cfg.Rate,
		Concurrency: r.cfg.Senders, MaxAttempts: 10, Progress: progress,
	}, txs)
	progress.Finish()
	if err != nil {
		return fmt.Errorf("sending transactions: %w", err)
	}
	wctx, cancel := context.WithTimeout(ctx, r.cfg.ResultTimeout)
	defer cancel()
	// Missing results still get a summary (it shows how many), then fail.
	var missing error
	if err := r.sink.WaitDistinct(wctx, len(sent)); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("results: %w", ctx.Err())
		}
		missing = fmt.Errorf("results: %w", err)
	}

	s := &r.result.Summary
	first := r.sink.First()
	counts := r.sink.Counts()
	o := Join(sent, first, counts.Duplicates)
	cold, endpoints := s.ColdStart, s.Endpoints
	*s = summarize(o, counts.ResultBytes)
	s.ColdStart, s.Endpoints = cold, endpoints
	s.Settings = Settings{Count: r.cfg.Count, Rate: r.cfg.Rate, Seed: r.cfg.Seed, FraudRate: r.cfg.FraudRate,
		MaxBatchSize: r.cfg.MaxBatchSize, MaxLatency: r.cfg.MaxLatency.String(), Protocol: r.cfg.Protocol,
		TEE: "sample (DEVELOPMENT ONLY, insecure)"}
	for _, a := range first {
		s.Model, s.ModelVersion = a.Model, a.ModelVersion
		break
	}
	if err := r.batcherFigures(ctx, batcherMetrics, s); err != nil {
		slog.Warn("batcher metrics unavailable", "err", err)
	}
	r.result.Sent, r.result.First, r.result.Outcome = sent, first, o

	r.printf("[5/5] %d results arrived at the sink\n\n", counts.Results)
	if r.cfg.ReportPath != "" {
		abs, err := filepath.Abs(r.cfg.ReportPath)
		if err != nil {
			return fmt.Errorf("report path: %w", err)
		}
		s.ReportPath = abs
		if err := WriteReport(abs, ReportData{Summary: *s, Points: o.Points, LegitScores: o.LegitScores,
			FraudScores: o.FraudScores, Threshold: fraudThreshold, Generated: time.Now()}); err != nil {
			return err
		}
	}
	if err := s.PrintTable(r.out); err != nil {
		return fmt.Errorf("print summary: %w", err)
	}
	if r.cfg.SummaryJSON != "" {
		if err := s.WriteJSON(r.cfg.SummaryJSON); err != nil {
			return err
		}
	}
	if r.cfg.ResultsPath != "" {
		if err := writeResults(r.cfg.ResultsPath, sent, first); err != nil {
			return err
		}
	}
	return missing
}

// fraudThreshold is the batcher's default: fraud = score > 0.95.
const fraudThreshold = 0.95

// batcherFigures fills in batch sizes and the batcher's own byte counts.
func (r *run) batcherFigures(ctx context.Context, url string, s *Summary) error {
	mfs, err := scrapeMetrics(ctx, r.http, url)
	if err != nil {
		return err
	}
	if h, ok := mfs.histogram(nameHas(metricBatchRows)); ok {
		s.Batches = h
	}
	if v, ok := mfs.counterSum(nameHas(metricBatcherIngress)); ok {
		s.Egress.BatcherIngressBytes = v
	}
	if v, ok := mfs.counterSum(nameHas(metricBatcherEgress)); ok {
		s.Egress.BatcherEgressBytes = v
	}
	return nil
}

// Metric names of the batcher (functions/receiver) and the runtime
// (runtime/coldstart); kept here so that pipeline depends on neither.
const (
	metricBatchRows      = "veil_batcher_batch_rows"
	metricBatcherIngress = "veil_batcher_ingress_bytes_total"
	metricBatcherEgress  = "veil_batcher_egress_bytes_total"
	metricColdStartLast  = "veil_coldstart_last_phase_seconds"
)

// coldStartPhases is the order in which the runtime's phases happen.
var coldStartPhases = []string{"evidence", "attest", "fetch", "decrypt", "session", "total"}

// coldStart reads the latest cold start's phases from the runtime's metrics.
func (r *run) coldStart(ctx context.Context, rt runtimeEndpoints) ([]Phase, error) {
	mfs, err := scrapeMetrics(ctx, r.http, rt.httpURL+"/metrics")
	if err != nil {
		return nil, err
	}
	mf, ok := mfs[metricColdStartLast]
	if !ok {
		return nil, fmt.Errorf("runtime metrics have no %s", metricColdStartLast)
	}
	byPhase := map[string]float64{}
	for _, m := range mf.GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == "phase" {
				byPhase[l.GetValue()] = m.GetGauge().GetValue()
			}
		}
	}
	var out []Phase
	for _, name := range coldStartPhases {
		if v, ok := byPhase[name]; ok {
			out = append(out, Phase{Name: name, Seconds: v})
		}
	}
	return out, nil
}

func formatPhases(phases []Phase) string {
	parts := make([]string, 0, len(phases))
	for _, p := range phases {
		parts = append(parts, fmt.Sprintf("%s %s", p.Name, round(time.Duration(p.Seconds*float64(time.Second)))))
	}
	return strings.Join(parts, ", ")
}

// resultLine is one line of --results_jsonl: no transaction features,
// only the id, the ground truth and what came back.
type resultLine struct {
	TransactionID string  `json:"transaction_id"`
	TrueFraud     bool    `json:"true_fraud"`
	Scored        bool    `json:"scored"`
	Score         float64 `json:"score"`
	Fraud         bool    `json:"fraud"`
	LatencyMs     float64 `json:"latency_ms"`
}

func writeResults(path string, sent []Sent, first map[string]Arrival) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("results file: %w", err)
	}
	enc := json.NewEncoder(f)
	for _, s := range sent {
		l := resultLine{TransactionID: s.ID, TrueFraud: s.Fraud}
		if a, ok := first[s.ID]; ok {
			l.Scored, l.Score, l.Fraud, l.LatencyMs = true, a.Score, a.Fraud, millis(a.At.Sub(s.At))
		}
		if err := enc.Encode(l); err != nil {
			f.Close()
			return fmt.Errorf("write results %s: %w", path, err)
		}
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write results %s: %w", path, err)
	}
	return nil
}

// endpoint records where a piece listened, for the summary (a test checks
// that each is closed after the run).
func (r *run) endpoint(name, addr string) {
	if r.result.Summary.Endpoints == nil {
		r.result.Summary.Endpoints = map[string]string{}
	}
	r.result.Summary.Endpoints[name] = addr
}

// startChild starts a long-running child and registers it for cleanup.
func (r *run) startChild(name, path string, env []string, args ...string) (*proc, error) {
	var echo io.Writer
	if r.cfg.Verbose {
		echo = r.cfg.Stderr
	}
	// TMPDIR points into the private temp dir, so whatever a child leaves
	// in its temp dir (onnxruntime's telemetry writes $TMPDIR/.ses) goes
	// when the run's temp dir does.
	env = append(env, "TMPDIR="+r.tmp)
	p, err := startProc(procSpec{name: name, path: path, args: args, env: env, echo: echo, grace: r.cfg.StopGrace})
	if err != nil {
		return nil, err
	}
	r.procs = append(r.procs, p)
	return p, nil
}

// runOnce runs a short-lived child to completion.
func (r *run) runOnce(ctx context.Context, name, path string, args ...string) error {
	p, err := r.startChild(name, path, nil, args...)
	if err != nil {
		return err
	}
	return p.run(ctx)
}

// waitHTTP polls url until it answers 200, the child exits, or ctx ends.
func (r *run) waitHTTP(ctx context.Context, p *proc, url string) error {
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	var last error
	for {
		if exited, perr := p.exited(); exited {
			return fmt.Errorf("%s exited (%v) before %s answered:\n%s", p.spec.name, perr, url, p.out.tail(20))
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return fmt.Errorf("probe %s: %w", url, err)
		}
		resp, err := r.http.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = fmt.Errorf("status %s", resp.Status)
		} else {
			last = err
		}
		select {
		case <-t.C:
		case <-ctx.Done():
			return fmt.Errorf("%s not ready (last: %v): %w\n%s", url, last, ctx.Err(), p.out.tail(20))
		}
	}
}

// cleanup stops the children newest first (batcher drains before the
// runtime goes, the KBS goes last), closes the sink and removes the temp
// dir. It runs on every exit path.
func (r *run) cleanup() error {
	var errs []error
	for i := len(r.procs) - 1; i >= 0; i-- {
		p := r.procs[i]
		// A child that had already exited was reported where it failed.
		exitedBefore, _ := p.exited()
		if err := p.stop(); err != nil && !exitedBefore {
			errs = append(errs, err)
		}
	}
	if r.sink != nil {
		ctx, cancel := context.WithTimeout(context.Background(), r.cfg.StopGrace)
		errs = append(errs, r.sink.Close(ctx))
		cancel()
	}
	if r.tmp != "" {
		if err := os.RemoveAll(r.tmp); err != nil {
			errs = append(errs, fmt.Errorf("remove temp dir: %w", err))
		}
	}
	return errors.Join(errs...)
}

func loopback(port int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) }

// portOrFree returns port, or a loopback port that was free a moment ago.
func portOrFree(port int) (int, error) {
	if port != 0 {
		return port, nil
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func since(t time.Time) string { return round(time.Since(t)) }

func round(d time.Duration) string {
	switch {
	case d >= time.Second:
		return d.Round(10 * time.Millisecond).String()
	case d >= time.Millisecond:
		return d.Round(100 * time.Microsecond).String()
	default:
		return d.Round(time.Microsecond).String()
	}
}
