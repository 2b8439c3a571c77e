package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/veil-ai/veil/functions/transaction"
)

func TestGenFlagErrors(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{}, "--url or --out is required"},
		{[]string{"--url", "http://x", "--mode", "smoke"}, "unknown mode"},
		{[]string{"--out", "-", "--fraud_rate", "2"}, "fraud rate"},
		{[]string{"--count", "-1", "--out", "-"}, "--count"},
		{[]string{"stray"}, "unexpected arguments"},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			err := runGen(context.Background(), tc.args, io.Discard, io.Discard)
			assert.ErrorContains(t, err, tc.want)
		})
	}
}

func TestGenJSONLines(t *testing.T) {
	var out bytes.Buffer
	require.NoError(t, runGen(context.Background(), []string{"--out", "-", "--count", "50", "--seed", "9", "--fraud_rate", "0.5"}, &out, io.Discard))
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	require.Len(t, lines, 50)
	frauds := 0
	for i, l := range lines {
		tx, err := transaction.Decode([]byte(l), transaction.AllColumns)
		require.NoError(t, err, "line %d", i)
		assert.Equal(t, "tx-9-"+itoa(i), tx.ID)
		var label struct{ Fraud int }
		require.NoError(t, json.Unmarshal([]byte(l), &label))
		frauds += label.Fraud
	}
	assert.Positive(t, frauds)
	assert.Less(t, frauds, 50)

	var again bytes.Buffer
	require.NoError(t, runGen(context.Background(), []string{"--out", "-", "--count", "50", "--seed", "9", "--fraud_rate", "0.5"}, &again, io.Discard))
	assert.Equal(t, out.String(), again.String(), "same seed, same file")
}

func itoa(i int) string { b, _ := json.Marshal(i); return string(b) }

// The sender against a stand-in batcher that answers each binary event
// with a result event: every reply is written to --replies.
func TestGenSendsAndRecordsReplies(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get("Ce-Id")
		w.Header().Set("Ce-Specversion", "1.0")
		w.Header().Set("Ce-Id", id+"-r")
		w.Header().Set("Ce-Source", "s")
		w.Header().Set("Ce-Type", "dev.veil.fraud.score.v1")
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"transaction_id":"` + id + `","score":0.5,"fraud":false,"model":"fraud","model_version":"1"}`))
	}))
	defer srv.Close()
	replies := filepath.Join(t.TempDir(), "r.jsonl")
	var stderr bytes.Buffer
	require.NoError(t, runGen(context.Background(), []string{"--url", srv.URL, "--count", "20", "--replies", replies, "--seed", "4"}, io.Discard, &stderr))
	assert.Contains(t, stderr.String(), "20 acknowledged")
	f, err := os.Open(replies)
	require.NoError(t, err)
	defer f.Close()
	seen := map[string]bool{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var r struct {
			TransactionID string  `json:"transaction_id"`
			Score         float32 `json:"score"`
		}
		require.NoError(t, json.Unmarshal(sc.Bytes(), &r))
		assert.Equal(t, float32(0.5), r.Score)
		seen[r.TransactionID] = true
	}
	assert.Len(t, seen, 20)
}
