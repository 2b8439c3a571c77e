package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strconv"
	"time"
)

// requestIDHeader is KServe's request id header; logs carry it so one
// request can be followed through Knative, the runtime and the functions.
const requestIDHeader = "x-request-id"

type ctxKey struct{}

// withRequestID stores the id for logging.
func withRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, ctxKey{}, id)
}

func requestID(ctx context.Context) string {
	id, _ := ctx.Value(ctxKey{}).(string)
	return id
}

// newRequestID is used when the client sent none. Ids are bounded so that
// a hostile header cannot bloat logs.
func newRequestID(given string) string {
	if given != "" && len(given) <= 128 {
		return given
	}
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// statusWriter records the status code for metrics and logs.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// instrument wraps the REST handler: request id, in-flight gauge, request
// and error counters, an access log line (no bodies), and panic recovery
// so no panic reaches a client.
func (s *Server) instrument(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := newRequestID(r.Header.Get(requestIDHeader))
		w.Header().Set(requestIDHeader, id)
		ctx := withRequestID(r.Context(), id)
		sw := &statusWriter{ResponseWriter: w}
		g := s.metrics.inFlight.WithLabelValues("rest")
		g.Inc()
		start := time.Now()
		defer func() {
			if p := recover(); p != nil {
				s.log.Error("panic in REST handler", "request_id", id, "path", r.URL.Path, "panic", p, "stack", string(debug.Stack()))
				if sw.status == 0 {
					writeError(sw, http.StatusInternalServerError, "internal server error")
				}
			}
			g.Dec()
			code := strconv.Itoa(sw.status)
			s.metrics.requests.WithLabelValues("rest", code).Inc()
			if sw.status >= 400 {
				s.metrics.errors.WithLabelValues("rest", code).Inc()
			}
			s.log.Debug("request", "request_id", id, "method", r.Method, "path", r.URL.Path, "status", sw.status, "seconds", time.Since(start).Seconds())
		}()
		next.ServeHTTP(sw, r.WithContext(ctx))
	})
}

// logFailure logs a failed request: server faults with their message,
// client faults without it, since it may quote the client's data.
func (s *Server) logFailure(ctx context.Context, protocol string, status int, err error) {
	if clientFault(status) {
		s.log.LogAttrs(ctx, slog.LevelDebug, "request rejected", slog.String("request_id", requestID(ctx)), slog.String("protocol", protocol), slog.Int("status", status))
		return
	}
	s.log.LogAttrs(ctx, slog.LevelError, "request failed", slog.String("request_id", requestID(ctx)), slog.String("protocol", protocol), slog.Int("status", status), slog.String("error", err.Error()))
}
