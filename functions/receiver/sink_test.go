package receiver

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/cloudevents/sdk-go/v2/event"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestHTTPSink(t *testing.T) {
	var mu sync.Mutex
	got := map[string]bool{}
	var failID atomic.Value
	failID.Store("")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get("Ce-Id")
		if id == failID.Load().(string) {
			http.Error(w, "no", http.StatusServiceUnavailable)
			return
		}
		mu.Lock()
		got[id] = true
		mu.Unlock()
		w.WriteHeader(http.StatusAccepted)
	}))
	defer srv.Close()
	sink, err := NewHTTPSink(srv.URL, nil)
	require.NoError(t, err)
	mk := func(ids ...string) []event.Event {
		var evs []event.Event
		for _, id := range ids {
			ev := event.New()
			ev.SetID(id)
			ev.SetSource("s")
			ev.SetType(ResultEventType)
			evs = append(evs, ev)
		}
		return evs
	}
	require.NoError(t, sink.Send(t.Context(), mk("a")))
	require.NoError(t, sink.Send(t.Context(), mk("b", "c", "d", "e", "f", "g", "h", "i", "j", "k")))
	assert.Len(t, got, 11)
	failID.Store("y")
	err = sink.Send(t.Context(), mk("x", "y", "z"))
	assert.ErrorContains(t, err, "send result event 2 of 3")
	failID.Store("solo")
	assert.Error(t, sink.Send(t.Context(), mk("solo")))
}

// EventWireBytes (used for K_SINK) counts what countingWriter counts for
// the same event as a binary-mode reply.
func TestEventWireBytesMatchesReplyCount(t *testing.T) {
	f := newFixture(t, fixtureOpts{})
	resp, body := do(t, binaryRequest(t, f.srv.URL, "w1", "dev.veil.transaction.v1", txData))
	require.Equal(t, 200, resp.StatusCode)
	ev, err := cehttp.NewEventFromHTTPResponse(&http.Response{Header: resp.Header, Body: io.NopCloser(bytes.NewReader(body))})
	require.NoError(t, err)
	assert.Equal(t, float64(EventWireBytes(ev)), testutil.ToFloat64(f.metrics.BytesOut))
}
