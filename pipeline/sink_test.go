package pipeline

import (
	"bytes"
	"context"
	"net/http"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func startSink(t *testing.T) *Sink {
	t.Helper()
	s, err := NewSink("127.0.0.1:0")
	require.NoError(t, err)
	s.Serve()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		require.NoError(t, s.Close(ctx))
	})
	return s
}

// postBinary sends a binary-mode CloudEvent by hand, so the test controls
// the exact data bytes.
func postBinary(t *testing.T, url, id, typ, data string) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewBufferString(data))
	require.NoError(t, err)
	req.Header.Set("ce-specversion", "1.0")
	req.Header.Set("ce-id", id)
	req.Header.Set("ce-source", "test/batcher")
	req.Header.Set("ce-type", typ)
	req.Header.Set("content-type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	return resp.StatusCode
}

func TestSinkRecordsResults(t *testing.T) {
	s := startSink(t)
	one := `{"transaction_id":"t1","score":0.25,"fraud":false,"model":"fraud","model_version":"1"}`
	batch := `[{"transaction_id":"t2","score":0.97,"fraud":true,"model":"fraud","model_version":"1"},` +
		`{"transaction_id":"t3","score":0.5,"fraud":false,"model":"fraud","model_version":"1"}]`
	dup := `{"transaction_id":"t1","score":0.25,"fraud":false,"model":"fraud","model_version":"1"}`

	tests := []struct {
		name, typ, data string
		wantStatus      int
	}{
		{"single result", ResultEventType, one, http.StatusOK},
		{"batched result", ResultBatchEventType, batch, http.StatusOK},
		{"duplicate", ResultEventType, dup, http.StatusOK},
		{"other type is ignored", "dev.veil.transaction.v1", `{"x":1}`, http.StatusOK},
		{"bad data", ResultEventType, `{"score":`, http.StatusBadRequest},
		{"no transaction id", ResultEventType, `{"score":0.1}`, http.StatusBadRequest},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := postBinary(t, s.URL(), string(rune('a'+i)), tt.typ, tt.data)
			// The sdk answers ACK with 200 or 204 depending on the reply.
			if tt.wantStatus == http.StatusOK {
				assert.Contains(t, []int{http.StatusOK, http.StatusAccepted, http.StatusNoContent}, got)
			} else {
				assert.Equal(t, tt.wantStatus, got)
			}
		})
	}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	require.NoError(t, s.WaitDistinct(ctx, 3))

	c := s.Counts()
	assert.Equal(t, SinkCounts{
		Events: 3, Results: 4, Distinct: 3, Duplicates: 1, Ignored: 1, Rejected: 2,
		ResultBytes: int64(len(one) + len(batch) + len(dup)),
	}, c)
	first := s.First()
	require.Len(t, first, 3)
	assert.Equal(t, 0.97, first["t2"].Score)
	assert.True(t, first["t2"].Fraud)
	assert.False(t, first["t1"].At.IsZero())
	assert.Len(t, s.Arrivals(), 4)
}

func TestSinkWithSDKClient(t *testing.T) {
	s := startSink(t)
	c, err := cloudevents.NewClientHTTP()
	require.NoError(t, err)
	ctx := cloudevents.ContextWithTarget(context.Background(), s.URL())
	for _, mode := range []string{"binary", "structured"} {
		e := cloudevents.NewEvent()
		e.SetID("id-" + mode)
		e.SetSource("test")
		e.SetType(ResultEventType)
		require.NoError(t, e.SetData(cloudevents.ApplicationJSON,
			ScoreResult{TransactionID: "tx-" + mode, Score: 0.75, Model: "fraud", ModelVersion: "1"}))
		sendCtx := ctx
		if mode == "structured" {
			sendCtx = cloudevents.WithEncodingStructured(ctx)
		}
		res := c.Send(sendCtx, e)
		require.True(t, cloudevents.IsACK(res), "send %s: %v", mode, res)
	}
	first := s.First()
	assert.Equal(t, 0.75, first["tx-structured"].Score)
	assert.Equal(t, "1", first["tx-binary"].ModelVersion)
}

func TestSinkBatchedContentMode(t *testing.T) {
	s := startSink(t)
	body := `[{"specversion":"1.0","id":"1","source":"b","type":"` + ResultEventType + `","datacontenttype":"application/json",` +
		`"data":{"transaction_id":"x1","score":0.5,"fraud":false,"model":"fraud","model_version":"1"}},` +
		`{"specversion":"1.0","id":"2","source":"b","type":"` + ResultEventType + `","datacontenttype":"application/json",` +
		`"data":{"transaction_id":"x2","score":0.99,"fraud":true,"model":"fraud","model_version":"1"}}]`
	resp, err := http.Post(s.URL(), "application/cloudevents-batch+json", bytes.NewBufferString(body))
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusAccepted, resp.StatusCode)
	assert.Equal(t, 2, s.Counts().Distinct)
	assert.True(t, s.First()["x2"].Fraud)

	resp, err = http.Get(s.URL())
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode)

	resp, err = http.Post(s.URL(), "text/plain", bytes.NewBufferString("hello"))
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode, "no CloudEvent at all")
}

func TestSinkWaitDistinctHonoursContext(t *testing.T) {
	s := startSink(t)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	err := s.WaitDistinct(ctx, 1)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Contains(t, err.Error(), "0 of 1")
}

func FuzzDecodeResults(f *testing.F) {
	f.Add([]byte(`{"transaction_id":"t1","score":0.25,"fraud":false,"model":"fraud","model_version":"1"}`))
	f.Add([]byte(`[{"transaction_id":"a","score":1}]`))
	f.Add([]byte(`[]`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, data []byte) {
		rs, err := decodeResults(data)
		if err != nil {
			return
		}
		for _, r := range rs {
			if r.TransactionID == "" {
				t.Fatalf("accepted a result without transaction id: %q", data)
			}
		}
	})
}
