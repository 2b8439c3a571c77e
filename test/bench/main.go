// Command bench is `make bench`: one run on this machine that measures
// rows/s and p50/p99 latency of the fraud model through every path Veil
// offers, against the physical limit (onnxruntime's own Run, in process)
// and the transport floor (a bare net/http handler), and writes the table
// to stdout and into docs/performance.md.
//
// veil-runtime runs as the real binary from $VEIL_BIN_DIR on loopback, as
// it ships: its flags, its onnxruntime settings and its own process, whose
// CPU time is metered apart from the load generator's (the per-core column
// and the capacity model rest on it). Latency and rows/s include the
// client's encoding work on the same machine; the report says so. With
// -cpuprofile the server runs in this process instead, so that one profile
// shows its hot paths.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/veil-ai/veil/runtime/batch"
	"github.com/veil-ai/veil/test/e2e"
)

// config is the bench's whole configuration, from flags.
type config struct {
	duration, warmup time.Duration
	clients          int
	batches          []int
	loadClients      int
	loadProtocol     string
	ortThreads       int
	ortSpinning      bool
	ortLib           string
	binDir           string
	out              string
	only             *regexp.Regexp
	maxBatchSize     int
	maxBatchTime     time.Duration
	serverArgs       []string
	sizingBatch      int
	utilization      float64
	podVCPUs         int
	cpuProfile       string
}

func main() {
	floorAddr := flag.String("floor-listen", "", "internal: serve the transport floor handler on this address")
	cfg, err := parseFlags()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(2)
	}
	if *floorAddr != "" {
		if err := serveFloor(*floorAddr); err != nil {
			fmt.Fprintln(os.Stderr, "bench floor server:", err)
			os.Exit(1)
		}
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, cfg); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func parseFlags() (config, error) {
	var c config
	var batches, only, serverArgs string
	flag.DurationVar(&c.duration, "duration", 3*time.Second, "measured time per row")
	flag.DurationVar(&c.warmup, "warmup", 500*time.Millisecond, "unmeasured warm-up per row")
	flag.IntVar(&c.clients, "clients", 1, "closed-loop clients for the per-batch rows")
	flag.StringVar(&batches, "batches", "1,64,256,1024", "rows per request for the per-batch rows")
	flag.IntVar(&c.loadClients, "load-clients", 64, "clients for the concurrent single-row rows")
	flag.StringVar(&c.loadProtocol, "load-protocol", protoRESTJSON, "transport for the concurrent single-row rows: "+strings.Join(protocolNames(), ", "))
	flag.IntVar(&c.ortThreads, "ort-threads", runtime.GOMAXPROCS(0), "intra-op threads for the in-process onnxruntime limit")
	flag.BoolVar(&c.ortSpinning, "ort-spinning", true, "let the in-process onnxruntime's idle intra-op threads spin (onnxruntime's default, kept so that the limit stays the best case)")
	flag.StringVar(&c.ortLib, "ort-lib", os.Getenv("ORT_LIBRARY_PATH"), "libonnxruntime for the in-process limit (default $ORT_LIBRARY_PATH)")
	flag.StringVar(&c.binDir, "bin", os.Getenv("VEIL_BIN_DIR"), "directory holding veil-runtime (default $VEIL_BIN_DIR, else bin/)")
	flag.StringVar(&c.out, "out", filepath.Join(e2e.RepoRoot(), "docs", "performance.md"), "markdown file whose generated section gets the table; empty to skip")
	flag.StringVar(&only, "only", "", "regular expression: run only the scenarios whose name matches")
	flag.IntVar(&c.maxBatchSize, "max-batch-size", batch.DefaultMaxBatchSize, "veil-runtime --max_batch_size for the batching-on row")
	flag.DurationVar(&c.maxBatchTime, "max-batch-time", batch.DefaultMaxBatchTime, "veil-runtime --max_batch_time for the batching-on row")
	flag.IntVar(&c.sizingBatch, "sizing-batch", 256, "rows per request the capacity model sizes for (the functions' micro-batch)")
	flag.Float64Var(&c.utilization, "utilization", 0.6, "planned CPU utilization in the capacity model")
	flag.IntVar(&c.podVCPUs, "pod-vcpus", 4, "vCPUs of one peer-pod VM in the capacity model")
	flag.StringVar(&c.cpuProfile, "cpuprofile", "", "write a CPU profile of the server rows here; the server then runs in this process")
	flag.StringVar(&serverArgs, "server-args", "", "extra space-separated flags for every veil-runtime started")
	flag.Parse()

	for _, f := range strings.Split(batches, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return c, fmt.Errorf("-batches: %q is not a positive row count", f)
		}
		c.batches = append(c.batches, n)
	}
	if c.clients < 1 || c.loadClients < 1 || c.ortThreads < 1 || c.podVCPUs < 1 {
		return c, errors.New("-clients, -load-clients, -ort-threads and -pod-vcpus must be at least 1")
	}
	if c.utilization <= 0 || c.utilization > 1 {
		return c, errors.New("-utilization must be in (0, 1]")
	}
	if !validProtocol(c.loadProtocol) {
		return c, fmt.Errorf("-load-protocol: %q is not one of %s", c.loadProtocol, strings.Join(protocolNames(), ", "))
	}
	re, err := regexp.Compile(only)
	if err != nil {
		return c, fmt.Errorf("-only: %w", err)
	}
	c.only = re
	if c.binDir == "" {
		c.binDir = filepath.Join(e2e.RepoRoot(), "bin")
	}
	c.serverArgs = strings.Fields(serverArgs)
	return c, nil
}

func run(ctx context.Context, cfg config) error {
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	m := describeMachine()
	started := time.Now()
	b := &bench{cfg: cfg, log: log, raw: map[int]float64{}}

	b.rawRows(ctx)
	b.floorRows(ctx)
	if cfg.cpuProfile != "" {
		stop, err := startProfile(cfg.cpuProfile)
		if err != nil {
			return err
		}
		b.serverRows(ctx)
		if err := stop(); err != nil {
			return err
		}
		log.Info("cpu profile written", "file", cfg.cpuProfile)
	} else {
		b.serverRows(ctx)
	}

	m.LoadAfter = loadAvg()
	report := renderReport(m, settings{
		duration: cfg.duration, warmup: cfg.warmup, clients: cfg.clients,
		loadClients: cfg.loadClients, loadProtocol: cfg.loadProtocol,
		ortThreads: cfg.ortThreads, ortSpinning: cfg.ortSpinning, serverThreads: "at its defaults (the CPUs its cgroup allows, no spinning)",
		batchSize: cfg.maxBatchSize, batchTime: cfg.maxBatchTime, sizingBatch: cfg.sizingBatch,
	}, b.rows, b.checkTargets(), b.cold, capacityModel{
		targets: []float64{10_000, 65_000}, utilization: cfg.utilization,
		podVCPUs: cfg.podVCPUs, minPods: 2,
	}, started)
	fmt.Println(report)
	if cfg.out != "" {
		if err := writeReport(cfg.out, report); err != nil {
			return err
		}
		log.Info("table written", "file", cfg.out)
	}
	return ctx.Err()
}

// bench collects rows as scenarios run.
type bench struct {
	cfg  config
	log  *slog.Logger
	rows []row
	raw  map[int]float64 // raw onnxruntime rows/s by batch
	cold *coldStart      // nil when not measured
}

// measureRow runs one scenario and records its row; a scenario that cannot
// run is recorded with its reason rather than ending the bench.
func (b *bench) measureRow(ctx context.Context, scenario string, batch, clients int, mk newOp, cpu cpuMeter) *row {
	if !b.cfg.only.MatchString(scenario) || ctx.Err() != nil {
		return nil
	}
	b.log.Info("measuring", "scenario", scenario, "rows_per_request", batch, "clients", clients)
	res, err := measure(ctx, clients, batch, b.cfg.warmup, b.cfg.duration, mk, cpu)
	return b.record(row{scenario: scenario, batch: batch, clients: clients, res: res, err: err})
}

func (b *bench) record(r row) *row {
	if r.err != nil {
		b.log.Warn("scenario not measured", "scenario", r.scenario, "rows_per_request", r.batch, "error", r.err)
	} else if raw := b.raw[r.batch]; raw > 0 {
		r.ratio = r.res.rows / raw
	}
	b.rows = append(b.rows, r)
	return &b.rows[len(b.rows)-1]
}

func (b *bench) skip(scenario string, batch, clients int, err error) {
	if b.cfg.only.MatchString(scenario) {
		b.record(row{scenario: scenario, batch: batch, clients: clients, err: err})
	}
}

const (
	scenarioRaw  = "raw onnxruntime Run (limit)"
	scenarioCold = "cold start"
)

func (b *bench) rawRows(ctx context.Context) {
	if b.cfg.ortLib == "" {
		b.skip(scenarioRaw, 1, b.cfg.clients, errors.New("no onnxruntime library: set ORT_LIBRARY_PATH or -ort-lib"))
		return
	}
	r, err := newRawORT(b.cfg.ortLib, b.cfg.ortThreads, b.cfg.ortSpinning)
	if err != nil {
		b.skip(scenarioRaw, 1, b.cfg.clients, err)
		return
	}
	// Destroyed before the server rows so that its idle threads take no CPU
	// from them.
	defer r.close()
	if b.cfg.only.MatchString(scenarioCold) {
		b.log.Info("measuring", "scenario", scenarioCold)
		cs, err := measureColdStart(b.cfg.ortThreads, 21)
		if err != nil {
			b.log.Warn("cold start not measured", "error", err)
		} else {
			b.cold = &cs
		}
	}
	for _, n := range b.cfg.batches {
		if got := b.measureRow(ctx, scenarioRaw, n, b.cfg.clients, r.op(n), selfCPU); got != nil && got.err == nil {
			b.raw[n] = got.res.rows
			got.ratio = 1
		}
	}
}

const scenarioFloor = "bare net/http handler (floor)"

func (b *bench) floorRows(ctx context.Context) {
	if !b.cfg.only.MatchString(scenarioFloor) {
		return
	}
	f, err := startFloor(ctx)
	if err != nil {
		b.skip(scenarioFloor, 1, b.cfg.clients, err)
		return
	}
	defer f.stop()
	for _, n := range b.cfg.batches {
		b.measureRow(ctx, scenarioFloor, n, b.cfg.clients, f.op(n, b.cfg.clients), procCPU(f.cmd.Process.Pid))
	}
}
