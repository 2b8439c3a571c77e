package devkbs

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"
)

// ServeConfig says where and how to listen.
type ServeConfig struct {
	Addr    string // host:port; port 0 picks a free one
	TLSCert string // PEM certificate file; with TLSKey enables HTTPS
	TLSKey  string
	// Ready, when set, receives the bound address once listening.
	Ready func(addr net.Addr)
}

// CheckListenAddr refuses non-loopback plain-HTTP listeners: without TLS the
// session cookie and admin token would cross the network in clear.
func CheckListenAddr(addr string, tlsEnabled bool) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("listen address %q: %w", addr, err)
	}
	if tlsEnabled {
		return nil
	}
	ip := net.ParseIP(host)
	if host == "localhost" || (ip != nil && ip.IsLoopback()) {
		return nil
	}
	return fmt.Errorf("listen address %q is not loopback: the development KBS only serves plain HTTP on 127.0.0.1/::1; give --tls_cert and --tls_key to listen elsewhere", addr)
}

// Serve runs the server until ctx ends, then shuts down gracefully and
// wipes the stored resources.
func (s *Server) Serve(ctx context.Context, sc ServeConfig) error {
	tlsEnabled := sc.TLSCert != "" || sc.TLSKey != ""
	if tlsEnabled && (sc.TLSCert == "" || sc.TLSKey == "") {
		return errors.New("both --tls_cert and --tls_key are needed for HTTPS")
	}
	if err := CheckListenAddr(sc.Addr, tlsEnabled); err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           s,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          nil,
	}
	if tlsEnabled {
		cert, err := tls.LoadX509KeyPair(sc.TLSCert, sc.TLSKey)
		if err != nil {
			return fmt.Errorf("load TLS key pair: %w", err)
		}
		srv.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", sc.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", sc.Addr, err)
	}
	if tlsEnabled {
		ln = tls.NewListener(ln, srv.TLSConfig)
	}
	scheme := "http"
	if tlsEnabled {
		scheme = "https"
	}
	s.log.Info("development KBS listening", "url", scheme+"://"+ln.Addr().String())
	if sc.Ready != nil {
		sc.Ready(ln.Addr())
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		s.Close()
		return fmt.Errorf("development KBS: %w", err)
	case <-ctx.Done():
	}
	shutCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	err = srv.Shutdown(shutCtx)
	s.Close()
	s.log.Info("development KBS stopped; in-memory resources wiped")
	if err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}
