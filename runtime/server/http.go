package server

import (
	"log/slog"
	"net/http"
	"strings"
	"time"
)

// newHTTPServer serves REST and, for HTTP/2 requests with a gRPC content
// type, gRPC over cleartext HTTP/2 (h2c) on the same port: Knative gives a
// revision a single port.
func (s *Server) newHTTPServer() *http.Server {
	rest := s.instrument(s.restHandler())
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.httpInFlight.Add(1)
		defer s.httpInFlight.Add(-1)
		if r.ProtoMajor == 2 && strings.HasPrefix(r.Header.Get("Content-Type"), "application/grpc") {
			s.grpcSrv.ServeHTTP(w, r)
			return
		}
		rest.ServeHTTP(w, r)
	})
	var protocols http.Protocols
	protocols.SetHTTP1(true)
	protocols.SetUnencryptedHTTP2(true)
	return &http.Server{
		Handler:           handler,
		Protocols:         &protocols,
		ReadHeaderTimeout: 10 * time.Second,
		// Longer than the idle timeouts of the proxies in front (Knative's
		// activator and queue-proxy), as KServe advises.
		IdleTimeout:    90 * time.Second,
		MaxHeaderBytes: 64 << 10,
		ErrorLog:       slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
}
