package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/veil-ai/veil/internal/freeport"
	"github.com/veil-ai/veil/internal/syncbuf"
	"github.com/veil-ai/veil/models"
	"github.com/veil-ai/veil/test/e2e"
)

// runtimeServer is one veil-runtime started for the bench: normally the
// real binary in its own process; in-process under -cpuprofile.
type runtimeServer struct {
	httpURL  string
	grpcAddr string
	meter    cpuMeter
	shutdown func()

	mu      sync.Mutex
	cleanup []func()
}

// runtimeArgs are veil-runtime's flags for serving the shipped fraud model
// on the given ports (KServe's flag names).
func runtimeArgs(modelDir string, httpPort, grpcPort int) []string {
	return []string{
		"--model_name=" + modelName,
		"--model_dir=" + modelDir,
		"--http_port=" + strconv.Itoa(httpPort),
		"--grpc_port=" + strconv.Itoa(grpcPort),
	}
}

// batchSettings are the batcher flags a server is started with.
type batchSettings struct {
	size int
	wait time.Duration
}

func (b batchSettings) args() []string {
	return []string{"--max_batch_size=" + strconv.Itoa(b.size), "--max_batch_time=" + b.wait.String()}
}

func startRuntime(ctx context.Context, cfg config, bs batchSettings) (*runtimeServer, error) {
	if cfg.cpuProfile != "" {
		return startInProcess(ctx, cfg, bs)
	}
	path := filepath.Join(cfg.binDir, "veil-runtime")
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("veil-runtime not built (run `make build`): %w", err)
	}
	httpPort, err := freeport.Loopback()
	if err != nil {
		return nil, err
	}
	grpcPort, err := freeport.Loopback()
	if err != nil {
		return nil, err
	}
	modelDir, err := writeModelDir()
	if err != nil {
		return nil, err
	}
	args := append(append(runtimeArgs(modelDir, httpPort, grpcPort), bs.args()...), cfg.serverArgs...)
	cmd := exec.Command(path, args...)
	out := &syncbuf.Buffer{} // shown if the server fails to start
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		os.RemoveAll(modelDir)
		return nil, fmt.Errorf("start veil-runtime: %w", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	s := &runtimeServer{
		httpURL:  fmt.Sprintf("http://127.0.0.1:%d", httpPort),
		grpcAddr: fmt.Sprintf("127.0.0.1:%d", grpcPort),
		meter:    procCPU(cmd.Process.Pid),
		shutdown: func() {
			_ = cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				_ = cmd.Process.Kill()
				<-done
			}
			os.RemoveAll(modelDir)
		},
	}
	if err := waitReady(ctx, s.httpURL, done, 60*time.Second); err != nil {
		s.stop()
		return nil, fmt.Errorf("%w; veil-runtime output: %s", err, tail(out.String(), 2000))
	}
	return s, nil
}

// writeModelDir lays out the shipped fraud model as a KServe model
// directory (version folder 1) in a temporary directory.
func writeModelDir() (string, error) {
	dir, err := os.MkdirTemp("", "veil-bench-model-")
	if err != nil {
		return "", fmt.Errorf("model directory: %w", err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "1"), 0o755); err != nil {
		os.RemoveAll(dir)
		return "", fmt.Errorf("model directory: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "1", "model.onnx"), models.FraudONNX, 0o644); err != nil {
		os.RemoveAll(dir)
		return "", fmt.Errorf("model directory: %w", err)
	}
	return dir, nil
}

// cpu meters the server.
func (s *runtimeServer) cpu() cpuMeter { return s.meter }

// waitReady polls the model's readiness until it answers 200; done closing
// means the server has ended.
func waitReady(ctx context.Context, httpURL string, done <-chan struct{}, timeout time.Duration) error {
	gone := func() error {
		select {
		case <-done:
			return errors.New("veil-runtime exited before it was ready")
		default:
			return nil
		}
	}
	return e2e.PollReady(ctx, nil, httpURL+"/v2/models/"+modelName+"/ready", timeout, gone)
}

// onStop registers cleanup (client connections) to run before the server
// stops.
func (s *runtimeServer) onStop(f func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cleanup = append(s.cleanup, f)
}

// stop closes the clients, then asks the server to shut down gracefully.
func (s *runtimeServer) stop() {
	s.mu.Lock()
	for _, f := range s.cleanup {
		f()
	}
	s.cleanup = nil
	s.mu.Unlock()
	s.shutdown()
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// batchRuns reads the batcher's counters from the server's /metrics: engine
// runs so far and rows in them.
func (s *runtimeServer) batchRuns(ctx context.Context) (runs, rows float64, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.httpURL+"/metrics", nil)
	if err != nil {
		return 0, 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, 0, fmt.Errorf("scrape metrics: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return 0, 0, fmt.Errorf("scrape metrics: %w", err)
	}
	var foundRuns, foundRows bool
	for _, line := range strings.Split(string(body), "\n") {
		name, value, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		name, _, _ = strings.Cut(name, "{")
		v, perr := strconv.ParseFloat(strings.TrimSpace(value), 64)
		if perr != nil {
			continue
		}
		switch name {
		case "veil_batch_size_rows_count":
			runs, foundRuns = v, true
		case "veil_batch_size_rows_sum":
			rows, foundRows = v, true
		}
	}
	if !foundRuns || !foundRows {
		return 0, 0, errors.New("no veil_batch_size_rows histogram on /metrics")
	}
	return runs, rows, nil
}
