package pipeline

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

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

// The batcher's probe and metrics paths.
const (
	batcherReadyPath   = "/health/readiness"
	batcherMetricsPath = "/metrics"
)
