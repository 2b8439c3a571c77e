package receiver

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/cloudevents/conformance/pkg/event"
	"github.com/cloudevents/conformance/pkg/invoker"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/veil-ai/veil/functions/transaction"
)

// conformanceDir finds the cloudevents/conformance module (a Go tool
// dependency in go.mod) and its YAML event corpus.
func conformanceDir(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/cloudevents/conformance").Output()
	require.NoError(t, err, "go list the conformance module")
	dir := strings.TrimSpace(string(out))
	require.DirExists(t, filepath.Join(dir, "yaml"))
	return dir
}

// recorder wraps the receiver and keeps every exchange, in arrival order
// (the invoker sends one event at a time; its own PostHook runs
// asynchronously and cannot read the reply reliably).
type recorder struct {
	next  http.Handler
	mu    sync.Mutex
	pairs []exchange
}

type exchange struct {
	reqHeader  http.Header
	status     int
	respHeader http.Header
	body       []byte
}

func (r *recorder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	rec := httptest.NewRecorder()
	r.next.ServeHTTP(rec, req)
	for k, v := range rec.Header() {
		w.Header()[k] = v
	}
	w.WriteHeader(rec.Code)
	_, _ = w.Write(rec.Body.Bytes())
	r.mu.Lock()
	defer r.mu.Unlock()
	r.pairs = append(r.pairs, exchange{reqHeader: req.Header.Clone(), status: rec.Code, respHeader: rec.Header().Clone(), body: rec.Body.Bytes()})
}

func (r *recorder) exchanges() []exchange {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]exchange(nil), r.pairs...)
}

// TestConformanceSuite runs the CloudEvents conformance suite's HTTP event
// corpus (binary and structured, spec 1.0 and 0.3) against the receiver.
// As sent, the events are of foreign types: each must be acknowledged 2xx.
// Then the same events are sent with our transaction type and a
// transaction as data: each must be answered 200 with a valid result event.
func TestConformanceSuite(t *testing.T) {
	dir := conformanceDir(t)
	files := []string{filepath.Join(dir, "yaml", "v1.0"), filepath.Join(dir, "yaml", "v1.yaml"),
		filepath.Join(dir, "yaml", "v0.3"), filepath.Join(dir, "yaml", "v03.yaml")}
	corpus, err := event.FromYaml(strings.Join(files, ","), false)
	require.NoError(t, err)
	require.Len(t, corpus, 15, "the suite's HTTP corpus: 6+2 events of spec 1.0, 6+1 of 0.3")
	f := newFixture(t, fixtureOpts{})
	rec := &recorder{next: f.h}
	srv := httptest.NewServer(rec)
	defer srv.Close()
	u, err := url.Parse(srv.URL)
	require.NoError(t, err)

	t.Run("foreign events acknowledged", func(t *testing.T) {
		inv := &invoker.Invoker{URL: u, Files: files}
		require.NoError(t, inv.Do(), "the invoker fails on any non-2xx answer")
		got := rec.exchanges()
		require.Len(t, got, len(corpus))
		for _, x := range got {
			assert.Equal(t, http.StatusAccepted, x.status)
		}
	})

	t.Run("as transactions", func(t *testing.T) {
		before := len(rec.exchanges())
		var sent []string
		inv := &invoker.Invoker{URL: u, Files: files,
			PreHook: func(e event.Event) (event.Event, error) {
				e.Attributes.Type = transaction.EventType
				e.Attributes.DataContentType = "application/json"
				e.Data = txData
				sent = append(sent, e.Attributes.ID)
				return e, nil
			}}
		require.NoError(t, inv.Do())
		got := rec.exchanges()[before:]
		require.Len(t, got, len(sent))
		require.Len(t, sent, len(corpus))
		modes := map[string]int{}
		for i, x := range got {
			require.Equal(t, http.StatusOK, x.status, string(x.body))
			reply, err := cehttp.NewEventFromHTTPResponse(&http.Response{Header: x.respHeader, Body: io.NopCloser(bytes.NewReader(x.body))})
			require.NoError(t, err)
			require.NoError(t, reply.Validate())
			assert.Equal(t, ResultEventType, reply.Type())
			var rd resultData
			require.NoError(t, json.Unmarshal(reply.Data(), &rd))
			assert.Equal(t, sent[i], rd.TransactionID)
			assert.Equal(t, f.want(t, txData), rd.Score)
			if strings.HasPrefix(x.reqHeader.Get("Content-Type"), contentTypeStructured) {
				modes["structured"]++
			} else {
				modes["binary"]++
			}
		}
		assert.Positive(t, modes["structured"])
		assert.Positive(t, modes["binary"])
	})
}
