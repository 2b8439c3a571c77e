package kbsclient

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/veil-ai/veil/kbsclient/evidence"
	"github.com/veil-ai/veil/kbsclient/protocol"
	"github.com/veil-ai/veil/kbsclient/teekey"
)

// KBSConfig configures the direct RCAR client.
type KBSConfig struct {
	// URL of the KBS, e.g. https://kbs.example:8080 (no /kbs/v0 suffix).
	URL string
	// CACertPEM, when set, is the only trust anchor for the KBS's HTTPS
	// certificate (Trustee's --cert-file). Empty means the system roots.
	CACertPEM []byte
	// TEE is the evidence kind: "tdx", or "sample" with
	// AllowInsecureSampleTEE. Other TEEs are refused with a pointer to CDH.
	TEE string
	// AllowInsecureSampleTEE permits the sample TEE: development only.
	AllowInsecureSampleTEE bool
	// TDX configures tdx evidence (quote source, event log path).
	TDX evidence.TDXConfig
	// Evidence overrides the provider chosen from TEE (tests, new TEEs).
	Evidence evidence.Provider
	// KeyAlgorithm of the ephemeral TEE key: ECDH-ES+A256KW (default) or
	// RSA-OAEP-256.
	KeyAlgorithm teekey.Algorithm
	// InitData is sent with the attestation when set (format "toml").
	InitData *protocol.InitData
	// UseBearerToken sends the attestation token as Authorization: Bearer
	// on resource GETs instead of the session cookie.
	UseBearerToken bool
	// HTTPClient overrides the HTTP client (its TLS config is then the
	// caller's business and CACertPEM is ignored).
	HTTPClient *http.Client
	Backoff    Backoff
	Logger     *slog.Logger
}

// KBS is a KeySource speaking RCAR to a Trustee-compatible KBS. One KBS
// value keeps its attested session and reuses it until the KBS refuses it.
type KBS struct {
	cfg  KBSConfig
	base string
	ev   evidence.Provider
	http *http.Client

	mu   sync.Mutex // serialises Resource calls and guards sess
	sess *session
}

// session is one attested RCAR session with its ephemeral key.
type session struct {
	cookie string
	token  string
	key    *teekey.Key
}

// NewKBS validates cfg and returns a KBS key source.
func NewKBS(cfg KBSConfig) (*KBS, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("KBS URL %q: want http(s)://host:port", cfg.URL)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	ev := cfg.Evidence
	if ev == nil {
		ev, err = evidence.New(evidence.Config{TEE: cfg.TEE, AllowInsecureSampleTEE: cfg.AllowInsecureSampleTEE, TDX: cfg.TDX})
		if err != nil {
			return nil, fmt.Errorf("KBS client: %w", err)
		}
	}
	if ev.TEE() == protocol.TEESample {
		// An injected provider must not sneak past the opt-in either.
		if !cfg.AllowInsecureSampleTEE {
			return nil, fmt.Errorf("KBS client: %w", ErrInsecureTEE)
		}
		cfg.Logger.Warn("KBS client uses the INSECURE sample TEE: no hardware attestation, development only")
	}
	hc := cfg.HTTPClient
	if hc == nil {
		hc, err = newHTTPClient(cfg.CACertPEM)
		if err != nil {
			return nil, err
		}
	}
	if u.Scheme == "http" && !isLoopback(u.Hostname()) {
		cfg.Logger.Warn("KBS URL is plain HTTP to a non-loopback host; the resource is still JWE-encrypted but the session can be hijacked", "url", cfg.URL)
	}
	return &KBS{cfg: cfg, base: strings.TrimRight(cfg.URL, "/"), ev: ev, http: hc}, nil
}

func newHTTPClient(caPEM []byte) (*http.Client, error) {
	tlsCfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if len(caPEM) > 0 {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(caPEM) {
			return nil, errors.New("KBS CA certificate: no PEM certificate found")
		}
		tlsCfg.RootCAs = pool
	}
	tr := &http.Transport{
		Proxy:               http.ProxyFromEnvironment,
		TLSClientConfig:     tlsCfg,
		TLSHandshakeTimeout: 10 * time.Second,
		MaxIdleConns:        4,
		IdleConnTimeout:     30 * time.Second,
	}
	return &http.Client{Transport: tr, Timeout: 60 * time.Second, CheckRedirect: refuseRedirect}, nil
}

// refuseRedirect: a KBS never redirects, and following one could carry the
// session cookie, token or admin token somewhere else.
func refuseRedirect(req *http.Request, _ []*http.Request) error {
	return permanent(fmt.Errorf("KBS redirected to %s: refused", req.URL.Redacted()))
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Resource implements KeySource.
func (k *KBS) Resource(ctx context.Context, id ResourceID) ([]byte, Timings, error) {
	start := time.Now()
	var t Timings
	if err := id.Valid(); err != nil {
		return nil, t, err
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	var out []byte
	n, err := retry(ctx, k.cfg.Backoff, k.cfg.Logger, "fetch "+id.String()+" from KBS "+k.base, func(ctx context.Context) error {
		t.Evidence, t.Attest, t.Fetch = 0, 0, 0
		b, err := k.attempt(ctx, id, &t)
		out = b
		return classify(err)
	})
	t.Attempts, t.Total = n, time.Since(start)
	if err != nil {
		return nil, t, err
	}
	return out, t, nil
}

// attempt fetches with the cached session, re-attesting once if the KBS
// refuses it (what guest-components does on a 401).
func (k *KBS) attempt(ctx context.Context, id ResourceID, t *Timings) ([]byte, error) {
	if k.sess != nil {
		b, err := k.fetch(ctx, id, k.sess, t)
		if err == nil {
			return b, nil
		}
		if !errors.Is(err, ErrUnauthorized) && !errors.Is(err, ErrSessionExpired) {
			return nil, err
		}
		k.cfg.Logger.Info("KBS refused the cached session, attesting again", "err", err)
		k.sess = nil
	}
	s, err := k.handshake(ctx, t)
	if err != nil {
		return nil, err
	}
	k.sess = s
	return k.fetch(ctx, id, s, t)
}

// classify marks errors that retrying cannot fix.
func classify(err error) error {
	if err == nil {
		return nil
	}
	var certErr *tls.CertificateVerificationError
	if errors.As(err, &certErr) {
		return permanent(fmt.Errorf("KBS TLS certificate not trusted (check --kbs_cert): %w", err))
	}
	for _, p := range []error{ErrVersionMismatch, ErrPolicyDenied, ErrAttestationFailed, ErrNotFound, ErrBadReply, ErrDecrypt, ErrInsecureTEE, ErrUnsupportedTEE} {
		if errors.Is(err, p) {
			return permanent(err)
		}
	}
	return err
}

// handshake runs /auth, collects evidence and runs /attest.
func (k *KBS) handshake(ctx context.Context, t *Timings) (*session, error) {
	key, err := teekey.Generate(k.cfg.KeyAlgorithm)
	if err != nil {
		return nil, permanent(err)
	}
	pub, err := key.Public()
	if err != nil {
		return nil, permanent(err)
	}

	authStart := time.Now()
	reqBody, err := json.Marshal(protocol.NewRequest(k.ev.TEE()))
	if err != nil {
		return nil, fmt.Errorf("encode auth request: %w", err)
	}
	status, body, cookies, err := k.post(ctx, protocol.PathAuth, reqBody, "")
	if err != nil {
		return nil, fmt.Errorf("KBS auth: %w", err)
	}
	if status != http.StatusOK {
		return nil, fmt.Errorf("KBS auth: %w", protocol.DecodeError(status, body))
	}
	ch, err := protocol.DecodeChallenge(body)
	if err != nil {
		return nil, fmt.Errorf("KBS auth: %w", err)
	}
	cookie := sessionCookie(cookies)
	if cookie == "" {
		return nil, fmt.Errorf("KBS auth: %w: no %s cookie in the reply", ErrBadReply, protocol.SessionCookie)
	}
	hashAlg, err := ch.HashAlgorithm()
	if err != nil {
		return nil, fmt.Errorf("KBS auth: %w", err)
	}
	t.Attest += time.Since(authStart)

	evStart := time.Now()
	const additionalEvidence = "" // no attached devices
	digest, err := protocol.RuntimeDataDigest(hashAlg, ch.Nonce, pub, additionalEvidence)
	if err != nil {
		return nil, fmt.Errorf("runtime data: %w", err)
	}
	primary, err := k.ev.Evidence(ctx, digest)
	t.Evidence = time.Since(evStart)
	if err != nil {
		return nil, fmt.Errorf("collect %s evidence: %w", k.ev.TEE(), err)
	}

	attStart := time.Now()
	att := protocol.Attestation{
		InitData:    k.cfg.InitData,
		RuntimeData: protocol.RuntimeData{Nonce: ch.Nonce, TeePubKey: pub},
		TeeEvidence: protocol.CompositeEvidence{PrimaryEvidence: primary, AdditionalEvidence: additionalEvidence},
	}
	attBody, err := json.Marshal(att)
	if err != nil {
		return nil, fmt.Errorf("encode attestation: %w", err)
	}
	status, body, _, err = k.post(ctx, protocol.PathAttest, attBody, cookie)
	t.Attest += time.Since(attStart)
	if err != nil {
		return nil, fmt.Errorf("KBS attest: %w", err)
	}
	if status != http.StatusOK {
		return nil, fmt.Errorf("KBS attest: %w", protocol.DecodeError(status, body))
	}
	ar, err := protocol.DecodeAttestResponse(body)
	if err != nil {
		return nil, fmt.Errorf("KBS attest: %w", err)
	}
	return &session{cookie: cookie, token: ar.Token, key: key}, nil
}

// fetch GETs the resource with the session and decrypts the JWE.
func (k *KBS) fetch(ctx context.Context, id ResourceID, s *session, t *Timings) ([]byte, error) {
	start := time.Now()
	defer func() { t.Fetch += time.Since(start) }()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, k.base+protocol.PathResource+id.Path(), nil)
	if err != nil {
		return nil, permanent(fmt.Errorf("KBS resource request: %w", err))
	}
	if k.cfg.UseBearerToken {
		req.Header.Set("Authorization", "Bearer "+s.token)
	} else {
		req.AddCookie(&http.Cookie{Name: protocol.SessionCookie, Value: s.cookie})
	}
	status, body, _, err := k.do(req)
	if err != nil {
		return nil, fmt.Errorf("KBS get %s: %w", id, err)
	}
	if status != http.StatusOK {
		return nil, fmt.Errorf("KBS get %s: %w", id, protocol.DecodeError(status, body))
	}
	pt, err := s.key.Decrypt(body)
	if err != nil {
		return nil, fmt.Errorf("KBS get %s: %w", id, err)
	}
	return pt, nil
}

func (k *KBS) post(ctx context.Context, path string, body []byte, cookie string) (int, []byte, []*http.Cookie, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, k.base+path, bytes.NewReader(body))
	if err != nil {
		return 0, nil, nil, permanent(fmt.Errorf("request %s: %w", path, err))
	}
	req.Header.Set("Content-Type", "application/json")
	if cookie != "" {
		req.AddCookie(&http.Cookie{Name: protocol.SessionCookie, Value: cookie})
	}
	return k.do(req)
}

func (k *KBS) do(req *http.Request) (int, []byte, []*http.Cookie, error) {
	resp, err := k.http.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	body, err := readBounded(resp.Body)
	if err != nil {
		return 0, nil, nil, err
	}
	return resp.StatusCode, body, resp.Cookies(), nil
}

func sessionCookie(cs []*http.Cookie) string {
	for _, c := range cs {
		if c.Name == protocol.SessionCookie && c.Value != "" {
			return c.Value
		}
	}
	return ""
}
