package sealed

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/veil-ai/veil/models"
	"github.com/veil-ai/veil/test/e2e"
)

const (
	resourceID = "kbs:///default/veil/fraud-model-key"
	modelName  = "fraud"
	// startTimeout is generous: the CI machine is shared and slow.
	startTimeout = 60 * time.Second
)

// The workshop's reference transactions and their scores (DATA.md).
var (
	sally  = []float64{0.3111400080477545, 1.9459399775518593, 1.0, 0.0, 0.0}
	stolen = []float64{100, 1.2, 0.0, 0.0, 1.0}
)

const (
	sallyScore  = 0.0050283
	stolenScore = 0.9926471
	scoreTol    = 1e-6
)

// scale applies the shipped StandardScaler: (x - mean) / scale in float64,
// then float32.
func scale(t *testing.T, x []float64) []float32 {
	t.Helper()
	var s struct {
		Mean  []float64 `json:"mean_"`
		Scale []float64 `json:"scale_"`
	}
	require.NoError(t, json.Unmarshal(models.FraudScalerJSON, &s))
	require.Len(t, s.Mean, len(x))
	out := make([]float32, len(x))
	for i, v := range x {
		out[i] = float32((v - s.Mean[i]) / s.Scale[i])
	}
	return out
}

// run executes a short-lived bin/ command and returns its combined output.
func run(t *testing.T, name string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(e2e.BinDir(t), name), args...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// world is one test's temp layout: everything the binaries write lands
// under root, so the leak scan can cover all of it.
type world struct {
	root, sealed, keyFile, tmp, tokenFile string
	logs                                  []*e2e.Process
	extraLogs                             []func() string
}

func newWorld(t *testing.T) *world {
	t.Helper()
	root := t.TempDir()
	w := &world{
		root:      root,
		sealed:    filepath.Join(root, "sealed"),
		keyFile:   filepath.Join(root, "key.bin"),
		tmp:       filepath.Join(root, "tmp"),
		tokenFile: filepath.Join(root, "admin-token"),
	}
	require.NoError(t, os.MkdirAll(w.tmp, 0o700))
	return w
}

// env points the children's temp directory into the world.
func (w *world) env() []string { return []string{"TMPDIR=" + w.tmp} }

// seal runs `veil seal` on the embedded fraud model.
func (w *world) seal(t *testing.T, extra ...string) []byte {
	t.Helper()
	out, err := run(t, "veil", append([]string{"seal", "--out", w.sealed, "--key", w.keyFile}, extra...)...)
	require.NoError(t, err, out)
	key, err := os.ReadFile(w.keyFile)
	require.NoError(t, err)
	return key
}

// startKBS runs the development KBS on addr (host:port) with the sample TEE.
func (w *world) startKBS(t *testing.T, addr string, extra ...string) *e2e.Process {
	t.Helper()
	args := append([]string{"kbs", "serve", "--addr", addr, "--admin_token_file", w.tokenFile, "--insecure_allow_sample_tee"}, extra...)
	p := e2e.Start(t, "veil", w.env(), args...)
	w.logs = append(w.logs, p)
	e2e.WaitHTTP(t, p, "http://"+addr+"/healthz", startTimeout)
	return p
}

func (w *world) upload(t *testing.T, addr, keyFile string) {
	t.Helper()
	out, err := run(t, "veil", "kbs", "upload", "--kbs_url", "http://"+addr, "--admin_token_file", w.tokenFile,
		"--resource_id", resourceID, "--in", keyFile)
	require.NoError(t, err, out)
}

// runtime starts veil-runtime on the sealed tree with the given key flags.
type runtimeProc struct {
	*e2e.Process
	base string
}

func (w *world) startRuntime(t *testing.T, keyFlags ...string) runtimeProc {
	t.Helper()
	port, grpcPort := e2e.FreePort(t), e2e.FreePort(t)
	args := append([]string{"--model_dir", w.sealed, "--model_name", modelName,
		"--http_port", strconv.Itoa(port), "--grpc_port", strconv.Itoa(grpcPort),
		"--resource_id", resourceID}, keyFlags...)
	p := e2e.Start(t, "veil-runtime", w.env(), args...)
	w.logs = append(w.logs, p)
	return runtimeProc{Process: p, base: fmt.Sprintf("http://127.0.0.1:%d", port)}
}

func kbsFlags(addr string) []string {
	return []string{"--key_source", "kbs", "--kbs_url", "http://" + addr, "--tee", "sample", "--insecure_allow_sample_tee"}
}

// scores asks the runtime over REST for Sally's and the stolen card's scores.
func (r runtimeProc) scores(t *testing.T) []float64 {
	t.Helper()
	data := append(scale(t, sally), scale(t, stolen)...)
	body, err := json.Marshal(map[string]any{
		"id":     "sealed-e2e",
		"inputs": []map[string]any{{"name": "dense_input", "datatype": "FP32", "shape": []int{2, 5}, "data": data}},
	})
	require.NoError(t, err)
	resp, err := http.Post(r.base+"/v2/models/"+modelName+"/infer", "application/json", bytes.NewReader(body))
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var out struct {
		Outputs []struct {
			Name string    `json:"name"`
			Data []float64 `json:"data"`
		} `json:"outputs"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&out))
	require.Len(t, out.Outputs, 1)
	return out.Outputs[0].Data
}

// requireCorrectScores checks the workshop's reference scores.
func (r runtimeProc) requireCorrectScores(t *testing.T) {
	t.Helper()
	got := r.scores(t)
	require.Len(t, got, 2)
	assert.InDelta(t, sallyScore, got[0], scoreTol, "Sally")
	assert.InDelta(t, stolenScore, got[1], scoreTol, "stolen card")
}

// status is the HTTP status of GET url, or 0 when nothing answered.
func status(url string) int {
	c := &http.Client{Timeout: time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// expectFailure waits for the runtime to exit, checking all along that it
// never reported ready and never served an inference, and returns its
// output. The exit must be non-zero.
func (r runtimeProc) expectFailure(t *testing.T, within time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if exited, err := r.Exited(); exited {
			require.Error(t, err, "runtime must exit non-zero when the model cannot be unsealed")
			return r.Output()
		}
		require.NotEqual(t, http.StatusOK, status(r.base+"/v2/health/ready"), "ready without a model")
		require.NotEqual(t, http.StatusOK, status(r.base+"/v2/models/"+modelName+"/ready"), "model ready without a key")
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("runtime still running after %v\n%s", within, r.Output())
	return ""
}

// secretPatterns are encodings of the key and windows of the plaintext
// model that must appear nowhere on disk or in logs.
func secretPatterns(key []byte) map[string][]byte {
	p := map[string][]byte{}
	if len(key) > 0 {
		p["key (raw)"] = key
		p["key (hex)"] = []byte(hex.EncodeToString(key))
		p["key (base64)"] = []byte(base64.StdEncoding.EncodeToString(key))
		p["key (base64url)"] = []byte(base64.RawURLEncoding.EncodeToString(key))
	}
	m := models.FraudONNX
	for _, off := range []int{len(m) / 4, len(m) / 2, len(m) - 64} {
		p[fmt.Sprintf("model bytes at %d", off)] = m[off : off+48]
	}
	p["model (base64 window)"] = []byte(base64.StdEncoding.EncodeToString(m[len(m)/2 : len(m)/2+48]))
	return p
}

// assertNoLeaks scans every file under the given roots and every captured
// log for the key and the plaintext model. allowKeyIn lists files that are
// allowed to hold the key (the key file `veil seal` wrote).
func assertNoLeaks(t *testing.T, key []byte, roots []string, logs []string, allowKeyIn ...string) {
	t.Helper()
	patterns := secretPatterns(key)
	allowed := map[string]bool{}
	for _, a := range allowKeyIn {
		allowed[a] = true
	}
	scanned := 0
	for _, root := range roots {
		err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || !d.Type().IsRegular() {
				return err
			}
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			scanned++
			for name, pat := range patterns {
				if allowed[p] && strings.HasPrefix(name, "key") {
					continue
				}
				assert.False(t, bytes.Contains(data, pat), "%s found in file %s", name, p)
			}
			return nil
		})
		require.NoError(t, err)
	}
	for i, l := range logs {
		for name, pat := range patterns {
			assert.False(t, bytes.Contains([]byte(l), pat), "%s found in log %d", name, i)
		}
	}
	require.Positive(t, scanned, "the leak scan must have looked at files")
}

// allLogs is the output of every process the world started.
func (w *world) allLogs() []string {
	var out []string
	for _, p := range w.logs {
		out = append(out, p.Output())
	}
	for _, f := range w.extraLogs {
		out = append(out, f())
	}
	return out
}

// fakeCDH serves one resource like the CoCo api-server-rest does.
type fakeCDH struct {
	*httptest.Server
	mu   sync.Mutex
	hits []string
}

func newFakeCDH(t *testing.T, secret []byte) *fakeCDH {
	t.Helper()
	f := &fakeCDH{}
	want := "/cdh/resource/" + strings.TrimPrefix(resourceID, "kbs:///")
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.hits = append(f.hits, r.URL.Path)
		f.mu.Unlock()
		if r.URL.Path != want {
			http.Error(w, "URL NOT FOUND", http.StatusNotFound)
			return
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		_, _ = w.Write(secret)
	}))
	t.Cleanup(f.Close)
	return f
}

func (f *fakeCDH) requests() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.hits...)
}
