package httpready

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestWait(t *testing.T) {
	errGone := errors.New("server exited")
	tests := []struct {
		name     string
		okAfter  int32 // probes answered 503 before 200; -1: never 200
		gone     func() error
		wantErr  error
		wantLast string
	}{
		{name: "ready at once", okAfter: 0},
		{name: "ready after two 503s", okAfter: 2},
		{name: "never ready", okAfter: -1, wantErr: context.DeadlineExceeded, wantLast: "status 503"},
		{name: "server gone", okAfter: -1, gone: func() error { return errGone }, wantErr: errGone},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var probes atomic.Int32
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				n := probes.Add(1) - 1
				if tt.okAfter < 0 || n < tt.okAfter {
					w.WriteHeader(http.StatusServiceUnavailable)
				}
			}))
			defer srv.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
			defer cancel()
			err := Wait(ctx, srv.Client(), srv.URL, tt.gone)
			if tt.wantErr == nil {
				require.NoError(t, err)
				assert.Equal(t, tt.okAfter+1, probes.Load())
				return
			}
			require.ErrorIs(t, err, tt.wantErr)
			if tt.wantLast != "" {
				var nr *NotReadyError
				require.ErrorAs(t, err, &nr)
				assert.Equal(t, srv.URL, nr.URL)
				assert.EqualError(t, nr.Last, tt.wantLast)
			}
		})
	}
}
