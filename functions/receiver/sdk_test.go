package receiver

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/cloudevents/sdk-go/v2/event"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/veil-ai/veil/functions/batcher"
	"github.com/veil-ai/veil/functions/transaction"
)

// Handle behind sdk-go's own receive handler, which is what the Knative
// Functions (func-go) scaffolding serves: statuses must come through.
func TestHandleBehindSDKReceiver(t *testing.T) {
	tests := []struct {
		name       string
		scorer     Scorer
		typ        string
		data       string
		wantStatus int
		wantReply  bool
	}{
		{"scored", nil, transaction.EventType, txData, 200, true},
		{"other type", nil, "com.example.other", `{}`, 200, false},
		{"malformed", nil, transaction.EventType, `{"used_chip":3}`, 400, false},
		{"queue full", errScorer{batcher.ErrQueueFull}, transaction.EventType, txData, 429, false},
		{"runtime down", errScorer{errors.New("refused")}, transaction.EventType, txData, 503, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, fixtureOpts{scorer: tc.scorer})
			p, err := cloudevents.NewHTTP()
			require.NoError(t, err)
			h, err := cloudevents.NewHTTPReceiveHandler(context.Background(), p, f.h.Handle)
			require.NoError(t, err)
			srv := httptest.NewServer(h)
			defer srv.Close()
			resp, body := do(t, binaryRequest(t, srv.URL, "sdk-1", tc.typ, tc.data))
			assert.Equal(t, tc.wantStatus, resp.StatusCode, string(body))
			if !tc.wantReply {
				return
			}
			assert.Equal(t, ResultEventType, resp.Header.Get("Ce-Type"))
			assert.Contains(t, string(body), `"transaction_id":"sdk-1"`)
		})
	}
}

func TestHandleDirect(t *testing.T) {
	f := newFixture(t, fixtureOpts{})
	ev := event.New()
	ev.SetID("d1")
	ev.SetSource("urn:test")
	ev.SetType(transaction.EventType)
	require.NoError(t, ev.SetData(event.ApplicationJSON, []byte(txData)))
	reply, err := f.h.Handle(context.Background(), ev)
	require.NoError(t, err)
	require.NotNil(t, reply)
	assert.Equal(t, ResultEventType, reply.Type())

	bad := event.New()
	_, err = f.h.Handle(context.Background(), bad)
	var res *cehttp.Result
	require.True(t, errors.As(err, &res))
	assert.Equal(t, http.StatusBadRequest, res.StatusCode)
}
