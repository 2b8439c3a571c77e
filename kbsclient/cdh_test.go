package kbsclient_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/veil-ai/veil/kbsclient"
)

// fakeCDH answers like api-server-rest: plaintext on 200, text on errors.
func fakeCDH(t *testing.T, failFirst int32, status int) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var calls atomic.Int32
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := calls.Add(1)
		if r.URL.Path != "/cdh/resource/default/model-keys/fraud" {
			w.WriteHeader(http.StatusNotFound)
			io.WriteString(w, "URL NOT FOUND")
			return
		}
		if n <= failFirst {
			w.WriteHeader(status)
			io.WriteString(w, "get resource failed: kbs unreachable")
			return
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Write(secret)
	}))
	t.Cleanup(ts.Close)
	return ts, &calls
}

func TestCDH(t *testing.T) {
	tests := []struct {
		name      string
		failFirst int32
		status    int
		id        string
		wantErr   string
		wantCalls int32
	}{
		{name: "plaintext", id: "kbs:///default/model-keys/fraud", wantCalls: 1},
		{name: "retries 500 until the KBS behind it answers", failFirst: 3, status: 500, id: "default/model-keys/fraud", wantCalls: 4},
		{name: "404 is permanent", id: "default/model-keys/other", wantErr: "HTTP 404: URL NOT FOUND", wantCalls: 1},
		{name: "403 is permanent", failFirst: 100, status: 403, id: "default/model-keys/fraud", wantErr: "HTTP 403", wantCalls: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ts, calls := fakeCDH(t, tc.failFirst, tc.status)
			c := kbsclient.NewCDH(kbsclient.CDHConfig{Addr: ts.URL + "/", Backoff: fastBackoff, Logger: quiet})
			got, tm, err := c.Resource(ctxWithin(t, 10*time.Second), mustID(t, tc.id))
			assert.Equal(t, tc.wantCalls, calls.Load())
			assert.Equal(t, int(tc.wantCalls), tm.Attempts)
			if tc.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tc.wantErr)
				var ce *kbsclient.CDHError
				assert.ErrorAs(t, err, &ce)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, secret, got)
			assert.Zero(t, tm.Evidence)
			assert.Zero(t, tm.Attest)
			assert.Positive(t, tm.Fetch)
		})
	}
}

func TestCDHDeadline(t *testing.T) {
	ts, _ := fakeCDH(t, 1<<30, 500)
	c := kbsclient.NewCDH(kbsclient.CDHConfig{Addr: ts.URL, Backoff: fastBackoff, Logger: quiet})
	_, _, err := c.Resource(ctxWithin(t, 200*time.Millisecond), mustID(t, "default/model-keys/fraud"))
	require.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Contains(t, err.Error(), "kbs unreachable", "the last CDH answer explains the failure")
}

func TestCDHRejectsInvalidID(t *testing.T) {
	c := kbsclient.NewCDH(kbsclient.CDHConfig{Logger: quiet})
	_, _, err := c.Resource(context.Background(), kbsclient.ResourceID{Repo: "..", Type: "b", Tag: "c"})
	assert.Error(t, err)
}

func TestKeySourceImplementations(t *testing.T) {
	var _ kbsclient.KeySource = (*kbsclient.CDH)(nil)
	var _ kbsclient.KeySource = (*kbsclient.KBS)(nil)
	b := []byte{1, 2, 3}
	kbsclient.Wipe(b)
	assert.Equal(t, []byte{0, 0, 0}, b)
}
