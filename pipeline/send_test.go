package pipeline

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/veil-ai/veil/functions/gen"
	"github.com/veil-ai/veil/functions/transaction"
)

// flakyBatcher answers each event id with the statuses in script (one per
// attempt), then 202; it records every body it saw.
type flakyBatcher struct {
	mu       sync.Mutex
	script   map[string][]int
	attempts map[string]int
	bodies   map[string]string
}

func (f *flakyBatcher) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	id := r.Header.Get("ce-id")
	body, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	n := f.attempts[id]
	f.attempts[id] = n + 1
	f.bodies[id] = string(body)
	status := http.StatusAccepted
	if s := f.script[id]; n < len(s) {
		status = s[n]
	}
	f.mu.Unlock()
	if r.Header.Get("ce-type") != transaction.EventType {
		status = http.StatusBadRequest
	}
	w.WriteHeader(status)
}

func (f *flakyBatcher) tries(id string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.attempts[id]
}

func (f *flakyBatcher) body(id string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.bodies[id]
}

func newFlaky(script map[string][]int) *flakyBatcher {
	return &flakyBatcher{script: script, attempts: map[string]int{}, bodies: map[string]string{}}
}

func makeTxs(t *testing.T, n int) []gen.Labeled {
	t.Helper()
	ls, err := generate(n, 3, 0.1)
	require.NoError(t, err)
	return ls
}

// id is the generator's id of the i-th transaction with seed 3.
func id(i int) string { return fmt.Sprintf("tx-3-%d", i) }

func TestSendAll(t *testing.T) {
	tests := []struct {
		name      string
		script    map[string][]int
		attempts  int
		wantErr   string
		wantTries map[string]int
	}{
		{name: "all accepted", attempts: 3},
		{name: "429 and 503 are retried", attempts: 3,
			script:    map[string][]int{id(3): {429, 503}, id(7): {500}},
			wantTries: map[string]int{id(3): 3, id(7): 2, id(1): 1}},
		{name: "too many failures", attempts: 2, script: map[string][]int{id(5): {503, 503, 503}},
			wantErr: "not delivered"},
		{name: "400 is not retried", attempts: 5, script: map[string][]int{id(2): {400}},
			wantErr: id(2) + " was never acknowledged", wantTries: map[string]int{id(2): 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fb := newFlaky(tt.script)
			srv := httptest.NewServer(fb)
			defer srv.Close()
			txs := makeTxs(t, 40)
			before := time.Now()
			sent, err := sendAll(context.Background(), LoadConfig{
				Target: srv.URL, Source: "test", Concurrency: 4, Retries: tt.attempts - 1,
			}, txs)
			for id, n := range tt.wantTries {
				assert.Equal(t, n, fb.tries(id), id)
			}
			if tt.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tt.wantErr)
				return
			}
			require.NoError(t, err)
			require.Len(t, sent, len(txs))
			for i, s := range sent {
				assert.Equal(t, txs[i].ID, s.ID)
				assert.Equal(t, txs[i].Fraud, s.Fraud)
				assert.Equal(t, len(eventData(txs[i])), s.Bytes)
				assert.False(t, s.At.Before(before))
				assert.Equal(t, string(eventData(txs[i])), fb.body(s.ID), "the bytes counted are the bytes sent")
				assert.Equal(t, fb.tries(s.ID), s.Attempts, "attempts of %s", s.ID)
			}
		})
	}
}

func TestSendAllHonoursRate(t *testing.T) {
	srv := httptest.NewServer(newFlaky(nil))
	defer srv.Close()
	sent, err := sendAll(context.Background(), LoadConfig{Target: srv.URL, Source: "test", Concurrency: 8, Rate: 200}, makeTxs(t, 21))
	require.NoError(t, err)
	first, last := sent[0].At, sent[0].At
	for _, s := range sent {
		if s.At.Before(first) {
			first = s.At
		}
		if s.At.After(last) {
			last = s.At
		}
	}
	// 21 events at 200/s cannot all start within less than 20 intervals
	// of 5 ms (a lower bound only: never assert speed).
	assert.GreaterOrEqual(t, last.Sub(first), 95*time.Millisecond)
}

func TestSendAllCancelled(t *testing.T) {
	block := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-block:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(block)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err := sendAll(ctx, LoadConfig{Target: srv.URL, Source: "test", Concurrency: 2, Retries: 2}, makeTxs(t, 10))
	require.Error(t, err)
}

func TestProgressNonTerminal(t *testing.T) {
	var out bytes.Buffer
	p := NewProgress(&out, "sending", 8, false)
	p.Add(8)
	p.Finish()
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	require.Len(t, lines, 1, out.String())
	assert.Contains(t, lines[0], "8/8")
	assert.Contains(t, lines[0], "100 %")

	out.Reset()
	p = NewProgress(&out, "sending", 8, false)
	p.Add(3)
	p.Finish()
	assert.Contains(t, out.String(), "3/8")
	assert.Contains(t, out.String(), "[===========>")

	var nilP *Progress
	nilP.Add(1)
	nilP.Finish()
}

func TestProgressTerminalRedraws(t *testing.T) {
	var out bytes.Buffer
	p := NewProgress(&out, "sending", 4, true)
	p.Add(4)
	p.Finish()
	s := out.String()
	assert.True(t, strings.HasPrefix(s, "\r"))
	assert.True(t, strings.HasSuffix(s, "\n"))
	assert.Contains(t, s, "4/4")
}
