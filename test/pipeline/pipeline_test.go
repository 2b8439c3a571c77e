// Package pipeline_test runs `veil run` end to end at reduced size and
// checks its summary against what actually happened: every transaction
// scored exactly once, scores equal to direct scoring of the same rows by a
// runtime on the plaintext model, the egress ratio equal to the bytes
// counted, the report written, and no process, port or temp file left.
package pipeline_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"math"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/veil-ai/veil/functions/transaction"
	"github.com/veil-ai/veil/models"
	"github.com/veil-ai/veil/oip"
	"github.com/veil-ai/veil/oip/client"
	"github.com/veil-ai/veil/pipeline"
	"github.com/veil-ai/veil/test/e2e"
)

const (
	e2eCount     = 1500
	e2eSeed      = 7
	e2eFraudRate = 0.1
)

// resultLine mirrors one line of --results_jsonl.
type resultLine struct {
	TransactionID string  `json:"transaction_id"`
	TrueFraud     bool    `json:"true_fraud"`
	Scored        bool    `json:"scored"`
	Score         float64 `json:"score"`
	Fraud         bool    `json:"fraud"`
	LatencyMs     float64 `json:"latency_ms"`
}

// veilRun is one `veil run` child with its own TMPDIR and an environment
// marker by which any process it left behind can be found.
type veilRun struct {
	*e2e.Process
	tmp    string
	marker string
}

func startVeilRun(t *testing.T, args ...string) *veilRun {
	t.Helper()
	tmp := filepath.Join(t.TempDir(), "tmp")
	require.NoError(t, os.Mkdir(tmp, 0o700))
	var nonce [8]byte
	_, _ = rand.Read(nonce[:])
	marker := "VEIL_E2E_MARKER=" + hex.EncodeToString(nonce[:])
	p := e2e.Start(t, "veil", []string{"TMPDIR=" + tmp, marker}, append([]string{"run"}, args...)...)
	return &veilRun{Process: p, tmp: tmp, marker: marker}
}

// leftovers lists processes still carrying the run's environment marker
// (the children inherit veil's environment).
func (v *veilRun) leftovers(t *testing.T) []string {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	require.NoError(t, err)
	var found []string
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		env, err := os.ReadFile(filepath.Join("/proc", e.Name(), "environ"))
		if err != nil {
			continue // gone, or not ours to read
		}
		for _, kv := range bytes.Split(env, []byte{0}) {
			if string(kv) == v.marker {
				cmdline, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
				found = append(found, strconv.Itoa(pid)+" "+strings.ReplaceAll(string(cmdline), "\x00", " "))
			}
		}
	}
	return found
}

func (v *veilRun) assertNothingLeft(t *testing.T) {
	t.Helper()
	assert.Empty(t, v.leftovers(t), "no child process may outlive veil run")
	left, err := os.ReadDir(v.tmp)
	require.NoError(t, err)
	names := make([]string, 0, len(left))
	for _, e := range left {
		names = append(names, e.Name())
	}
	assert.Empty(t, names, "veil run must remove its temp dir (sealed model, key, admin token)")
}

func TestVeilRunEndToEnd(t *testing.T) {
	dir := t.TempDir()
	summaryPath := filepath.Join(dir, "summary.json")
	resultsPath := filepath.Join(dir, "results.jsonl")
	reportPath := filepath.Join(dir, "report", "run.html")
	v := startVeilRun(t, "--count", strconv.Itoa(e2eCount), "--seed", strconv.Itoa(e2eSeed),
		"--fraud_rate", strconv.FormatFloat(e2eFraudRate, 'g', -1, 64), "--senders", "32",
		"--summary_json", summaryPath, "--results_jsonl", resultsPath, "--report", reportPath)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	require.NoError(t, v.Wait(ctx), "veil run failed")
	output := v.Output()
	v.assertNothingLeft(t)

	var sum pipeline.Summary
	b, err := os.ReadFile(summaryPath)
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, &sum))
	lines := readResults(t, resultsPath)

	txs, err := pipeline.GenerateTransactions(e2eCount, e2eSeed, e2eFraudRate)
	require.NoError(t, err)
	require.Len(t, txs, e2eCount)

	t.Run("every transaction scored exactly once", func(t *testing.T) {
		assert.Equal(t, e2eCount, sum.Sent)
		assert.Equal(t, e2eCount, sum.Scored)
		assert.Zero(t, sum.Missing)
		assert.Zero(t, sum.Duplicates)
		assert.Zero(t, sum.Unexpected)
		require.Len(t, lines, e2eCount)
		seen := map[string]bool{}
		for i, l := range lines {
			assert.Equal(t, txs[i].ID, l.TransactionID, "results in send order")
			assert.False(t, seen[l.TransactionID], "duplicate id %s", l.TransactionID)
			seen[l.TransactionID] = true
			assert.True(t, l.Scored, l.TransactionID)
			assert.Equal(t, txs[i].Fraud, l.TrueFraud, "ground truth of %s", l.TransactionID)
		}
	})

	t.Run("counts and precision/recall match the results", func(t *testing.T) {
		var c pipeline.Confusion
		flagged, truth := 0, 0
		for _, l := range lines {
			c.Add(l.Fraud, l.TrueFraud)
			if l.Fraud {
				flagged++
			}
			if l.TrueFraud {
				truth++
			}
			assert.Equal(t, l.Score > 0.95, l.Fraud, "fraud flag follows the 0.95 threshold")
		}
		assert.Equal(t, flagged, sum.Flagged)
		assert.Equal(t, truth, sum.TrueFraud)
		assert.Equal(t, c, sum.Confusion)
		if p, ok := c.Precision(); ok {
			require.NotNil(t, sum.Precision)
			assert.InDelta(t, p, *sum.Precision, 1e-12)
		}
		if r, ok := c.Recall(); ok {
			require.NotNil(t, sum.Recall)
			assert.InDelta(t, r, *sum.Recall, 1e-12)
		}
		// The generator makes fraud at about the asked rate.
		assert.InDelta(t, e2eFraudRate, float64(truth)/e2eCount, 0.04)
	})

	t.Run("latency percentiles match the results", func(t *testing.T) {
		lat := make([]time.Duration, 0, len(lines))
		for _, l := range lines {
			require.GreaterOrEqual(t, l.LatencyMs, 0.0)
			lat = append(lat, time.Duration(l.LatencyMs*float64(time.Millisecond)))
		}
		sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
		ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
		assert.InDelta(t, ms(pipeline.Percentile(lat, 50)), sum.Latency.P50Ms, 0.01)
		assert.InDelta(t, ms(pipeline.Percentile(lat, 99)), sum.Latency.P99Ms, 0.01)
		assert.LessOrEqual(t, sum.Latency.P50Ms, sum.Latency.P99Ms)
		assert.Greater(t, sum.Throughput, 0.0)
	})

	t.Run("egress ratio equals the bytes counted", func(t *testing.T) {
		var txBytes, resultBytes int64
		for i, tx := range txs {
			txBytes += int64(len(tx.Data))
			resultBytes += int64(len(resultData(lines[i], sum.Model, sum.ModelVersion)))
		}
		assert.Equal(t, txBytes, sum.Egress.TransactionBytes)
		assert.Equal(t, resultBytes, sum.Egress.ResultBytes)
		assert.InDelta(t, float64(resultBytes)/float64(txBytes), sum.Egress.Ratio, 1e-12)
		t.Logf("egress ratio %.4f (%d result bytes for %d transaction bytes)", sum.Egress.Ratio, resultBytes, txBytes)
	})

	t.Run("scores equal direct scoring", func(t *testing.T) {
		direct := scoreDirectly(t, txs)
		mismatches := 0
		for i, l := range lines {
			if float32(l.Score) != direct[i] {
				mismatches++
				if mismatches <= 5 {
					t.Errorf("%s: pipeline score %v, direct %v", l.TransactionID, float32(l.Score), direct[i])
				}
			}
		}
		assert.Zero(t, mismatches)
	})

	t.Run("batch sizes and cold start reported", func(t *testing.T) {
		assert.Positive(t, sum.Batches.Count)
		assert.InDelta(t, float64(e2eCount), sum.Batches.Sum, 0, "every row went to the runtime in some batch")
		names := map[string]bool{}
		for _, p := range sum.ColdStart {
			names[p.Name] = true
			assert.GreaterOrEqual(t, p.Seconds, 0.0)
		}
		for _, want := range []string{"attest", "fetch", "decrypt", "session", "total"} {
			assert.True(t, names[want], "cold-start phase %s", want)
		}
		assert.Contains(t, output, "cold start:")
		assert.Contains(t, output, "DEVELOPMENT ONLY")
	})

	t.Run("report written", func(t *testing.T) {
		assert.Equal(t, reportPath, sum.ReportPath)
		html, err := os.ReadFile(reportPath)
		require.NoError(t, err)
		assert.Equal(t, 3, strings.Count(string(html), "<svg"))
		assert.Contains(t, output, reportPath)
	})

	t.Run("every port closed", func(t *testing.T) {
		require.NotEmpty(t, sum.Endpoints)
		for name, addr := range sum.Endpoints {
			host := strings.TrimSuffix(strings.TrimPrefix(strings.TrimPrefix(addr, "http://"), "https://"), "/")
			conn, err := net.DialTimeout("tcp", host, time.Second)
			if err == nil {
				conn.Close()
			}
			assert.Error(t, err, "%s (%s) still listening", name, host)
		}
	})
}

func TestVeilRunCtrlC(t *testing.T) {
	v := startVeilRun(t, "--count", "1000000", "--rate", "500", "--report", "")
	deadline := time.Now().Add(3 * time.Minute)
	for !strings.Contains(v.Output(), "[4/5]") {
		require.True(t, time.Now().Before(deadline), "never reached the sending step")
		exited, err := v.Exited()
		require.False(t, exited, "veil run ended early: %v", err)
		time.Sleep(50 * time.Millisecond)
	}
	require.NotEmpty(t, v.leftovers(t), "children are running mid-run")
	// What a terminal's Ctrl-C sends.
	require.NoError(t, syscall.Kill(v.Pid(), syscall.SIGINT))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err := v.Wait(ctx)
	require.NotErrorIs(t, err, context.DeadlineExceeded, "veil run did not stop within a minute of Ctrl-C")
	require.Error(t, err, "an interrupted run exits non-zero")
	assert.Contains(t, v.Output(), "interrupted")
	v.assertNothingLeft(t)
}

func readResults(t *testing.T, path string) []resultLine {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	var out []resultLine
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var l resultLine
		require.NoError(t, json.Unmarshal(sc.Bytes(), &l))
		out = append(out, l)
	}
	require.NoError(t, sc.Err())
	return out
}

// resultData rebuilds a result event's data bytes as the batcher writes
// them (score in float32's shortest form), to recount the egress bytes.
func resultData(l resultLine, model, version string) []byte {
	b := []byte(`{"transaction_id":`)
	b = strconv.AppendQuote(b, l.TransactionID)
	b = append(b, `,"score":`...)
	b = strconv.AppendFloat(b, l.Score, 'g', -1, 32)
	b = append(b, `,"fraud":`...)
	b = strconv.AppendBool(b, l.Fraud)
	b = append(b, `,"model":`...)
	b = strconv.AppendQuote(b, model)
	b = append(b, `,"model_version":`...)
	b = strconv.AppendQuote(b, version)
	return append(b, '}')
}

// scoreDirectly scores the rows with a runtime serving the plaintext model
// over REST: no KBS, no batcher, no CloudEvents.
func scoreDirectly(t *testing.T, txs []pipeline.Transaction) []float32 {
	t.Helper()
	httpPort, grpcPort := e2e.FreePort(t), e2e.FreePort(t)
	// onnxruntime writes $TMPDIR/.ses at exit: keep it in the test's temp dir.
	rt := e2e.Start(t, "veil-runtime", []string{"TMPDIR=" + t.TempDir()}, "--model_dir", filepath.Join(e2e.RepoRoot(), "models", "fraud"),
		"--model_name", "fraud", "--host", "127.0.0.1", "--http_port", strconv.Itoa(httpPort), "--grpc_port", strconv.Itoa(grpcPort))
	url := "http://127.0.0.1:" + strconv.Itoa(httpPort)
	e2e.WaitHTTP(t, rt, url+"/v2/health/ready", time.Minute)

	scaler, err := transaction.ParseScaler(models.FraudScalerJSON)
	require.NoError(t, err)
	c, err := client.New(client.Config{URL: url, Protocol: client.RESTJSON, Timeout: 30 * time.Second})
	require.NoError(t, err)
	defer c.Close()
	ctx := context.Background()
	meta, err := c.ModelMetadata(ctx, "fraud", "")
	require.NoError(t, err)
	require.NotEmpty(t, meta.Inputs)

	width := scaler.Width()
	rows := make([]float32, 0, len(txs)*width)
	for _, tx := range txs {
		dec, err := transaction.Decode(tx.Data, scaler.Required())
		require.NoError(t, err)
		rows = scaler.Transform(rows, &dec)
	}
	raw := make([]byte, 4*len(rows))
	for i, v := range rows {
		binary.LittleEndian.PutUint32(raw[4*i:], math.Float32bits(v))
	}
	resp, err := c.Infer(ctx, "fraud", []oip.Tensor{{
		Name: meta.Inputs[0].Name, Datatype: oip.FP32, Shape: []int64{int64(len(txs)), int64(width)}, Raw: raw,
	}})
	require.NoError(t, err)
	require.NotEmpty(t, resp.Outputs)
	out := resp.Outputs[0]
	require.Equal(t, oip.FP32, out.Datatype)
	require.Len(t, out.Raw, 4*len(txs), "one score per row")
	scores := make([]float32, len(txs))
	for i := range scores {
		scores[i] = math.Float32frombits(binary.LittleEndian.Uint32(out.Raw[4*i:]))
	}
	return scores
}

// A run that fails midway (here: the runtime's fixed port is taken) still
// stops what it started and removes its temp dir.
func TestVeilRunFailureCleansUp(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	taken := strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
	v := startVeilRun(t, "--count", "10", "--report", "", "--runtime_http_port", taken)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	err = v.Wait(ctx)
	require.NotErrorIs(t, err, context.DeadlineExceeded)
	require.Error(t, err, "veil run must fail when the runtime cannot listen")
	assert.Contains(t, v.Output(), "address already in use")
	assert.Contains(t, v.Output(), "[1/5]", "the KBS was up before the failure")
	v.assertNothingLeft(t)
}
