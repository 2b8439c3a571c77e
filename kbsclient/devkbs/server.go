package devkbs

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/veil-ai/veil/kbsclient/protocol"
	"github.com/veil-ai/veil/kbsclient/teekey"
)

// DefaultSessionTTL matches Trustee's attestation_service.timeout default.
const DefaultSessionTTL = 5 * time.Minute

// Banner is attached to every log line and the health answer.
const Banner = "DEVELOPMENT ONLY"

// Config configures the development KBS.
type Config struct {
	// AdminToken authorises resource upload and delete (Bearer). Required.
	AdminToken []byte
	// Policy decides resource access. Zero value: DefaultPolicy for the
	// TEEs this server accepts.
	Policy *Policy
	// SessionTTL bounds an RCAR session and its token (default 5m).
	SessionTTL time.Duration
	// AllowInsecureSampleTEE accepts the sample TEE (no hardware evidence).
	AllowInsecureSampleTEE bool
	// TDX tunes tdx quote verification.
	TDX TDXVerifyConfig
	// Now is the clock (tests); default time.Now.
	Now    func() time.Time
	Logger *slog.Logger
}

// Server is the development KBS. It is an http.Handler.
type Server struct {
	cfg      Config
	adminSum [sha256.Size]byte
	policy   Policy
	sessions *sessions
	store    *store
	log      *slog.Logger
	mux      *http.ServeMux
}

// New validates cfg and builds a server.
func New(cfg Config) (*Server, error) {
	if len(cfg.AdminToken) == 0 {
		return nil, errors.New("development KBS: an admin token is required")
	}
	if cfg.SessionTTL <= 0 {
		cfg.SessionTTL = DefaultSessionTTL
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	var pol Policy
	if cfg.Policy != nil {
		pol = *cfg.Policy
	} else if cfg.AllowInsecureSampleTEE {
		pol = DefaultPolicy(protocol.TEETDX, protocol.TEESample)
	} else {
		pol = DefaultPolicy(protocol.TEETDX)
	}
	if err := pol.Validate(); err != nil {
		return nil, err
	}
	s := &Server{
		cfg:      cfg,
		adminSum: sha256.Sum256(cfg.AdminToken),
		policy:   pol,
		sessions: newSessions(cfg.SessionTTL, cfg.Now),
		store:    newStore(),
		log:      cfg.Logger.With("kbs", Banner),
		mux:      http.NewServeMux(),
	}
	s.mux.HandleFunc("GET /healthz", s.healthz)
	s.mux.HandleFunc("POST "+protocol.PathAuth, s.auth)
	s.mux.HandleFunc("POST "+protocol.PathAttest, s.attest)
	s.mux.HandleFunc("GET "+protocol.PathResource+"{path...}", s.getResource)
	s.mux.HandleFunc("POST "+protocol.PathResource+"{path...}", s.putResource)
	s.mux.HandleFunc("DELETE "+protocol.PathResource+"{path...}", s.deleteResource)
	s.mux.HandleFunc(protocol.PathPrefix+"/", s.unknown)
	if cfg.AllowInsecureSampleTEE {
		s.log.Warn("the INSECURE sample TEE is accepted: any process can obtain resources the policy allows to it")
	}
	return s, nil
}

// ServeHTTP bounds every request body and dispatches.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, protocol.MaxBodyBytes)
	s.mux.ServeHTTP(w, r)
}

// Close wipes all stored resources.
func (s *Server) Close() { s.store.wipe() }

func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	io.WriteString(w, "ok ("+Banner+" KBS)\n")
}

func (s *Server) unknown(w http.ResponseWriter, r *http.Request) {
	plugin := strings.SplitN(strings.TrimPrefix(r.URL.Path, protocol.PathPrefix+"/"), "/", 2)[0]
	s.fail(w, protocol.NewServerError(http.StatusNotFound, "PluginNotFound", fmt.Sprintf("Plugin %s not found", plugin)))
}

// fail answers with Trustee's error JSON.
func (s *Server) fail(w http.ResponseWriter, e *protocol.ServerError) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(e.Status)
	_ = json.NewEncoder(w).Encode(e.Info())
}

func attestationError(stage, why string) *protocol.ServerError {
	return protocol.NewServerError(http.StatusUnauthorized, "AttestationError",
		fmt.Sprintf("Attestation error: RCAR handshake %s failed: %s", stage, why))
}

func (s *Server) readBody(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	b, err := io.ReadAll(r.Body)
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			s.fail(w, protocol.NewServerError(http.StatusRequestEntityTooLarge, "InvalidRequest", fmt.Sprintf("request body exceeds %d bytes", protocol.MaxBodyBytes)))
		} else {
			s.fail(w, protocol.NewServerError(http.StatusBadRequest, "InvalidRequest", "could not read the request body"))
		}
		return nil, false
	}
	return b, true
}

func (s *Server) setCookie(w http.ResponseWriter, sess session) {
	http.SetCookie(w, &http.Cookie{Name: protocol.SessionCookie, Value: sess.id, Expires: sess.expires, HttpOnly: true})
}

func (s *Server) auth(w http.ResponseWriter, r *http.Request) {
	body, ok := s.readBody(w, r)
	if !ok {
		return
	}
	req, err := protocol.DecodeRequest(body)
	if err != nil {
		s.fail(w, attestationError("Auth", err.Error()))
		return
	}
	if req.Version != protocol.Version {
		s.log.Warn("auth refused: protocol version mismatch", "want", protocol.Version, "got", req.Version)
		s.fail(w, attestationError("Auth", fmt.Sprintf("KBS Client Protocol Version Mismatch: expect =%s while the request is %s", protocol.Version, req.Version)))
		return
	}
	if err := s.teeAccepted(req.TEE); err != nil {
		s.log.Warn("auth refused", "tee", req.TEE, "err", err)
		s.fail(w, attestationError("Auth", err.Error()))
		return
	}
	sess, err := s.sessions.open(req.TEE)
	if err != nil {
		s.fail(w, protocol.NewServerError(http.StatusServiceUnavailable, "AttestationError", "Attestation error: "+err.Error()))
		return
	}
	s.setCookie(w, *sess)
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(protocol.Challenge{Nonce: sess.nonce, ExtraParams: json.RawMessage(`""`)})
}

func (s *Server) teeAccepted(tee string) error {
	switch tee {
	case protocol.TEETDX:
		return nil
	case protocol.TEESample:
		if s.cfg.AllowInsecureSampleTEE {
			return nil
		}
		return errors.New("the sample TEE is refused (start the development KBS with --insecure_allow_sample_tee to accept it)")
	}
	return fmt.Errorf("TEE %q is not supported by the development KBS (tdx, sample)", tee)
}

func (s *Server) attest(w http.ResponseWriter, r *http.Request) {
	c, err := r.Cookie(protocol.SessionCookie)
	if err != nil {
		s.fail(w, attestationError("Attest", "session not found: no "+protocol.SessionCookie+" cookie"))
		return
	}
	sess, err := s.sessions.lookup(c.Value)
	if err != nil {
		s.fail(w, attestationError("Attest", err.Error()))
		return
	}
	body, ok := s.readBody(w, r)
	if !ok {
		return
	}
	att, err := protocol.DecodeAttestation(body)
	if err != nil {
		s.fail(w, attestationError("Attest", err.Error()))
		return
	}
	if err := s.verify(sess, att); err != nil {
		s.log.Warn("attestation rejected", "tee", sess.tee, "err", err)
		s.fail(w, attestationError("Attest", err.Error()))
		return
	}
	token, err := s.sessions.markAttested(sess.id, att.RuntimeData.TeePubKey)
	if err != nil {
		s.fail(w, attestationError("Attest", err.Error()))
		return
	}
	s.log.Info("attestation accepted", "tee", sess.tee)
	s.setCookie(w, sess)
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(protocol.AttestResponse{Token: token})
}

func (s *Server) verify(sess session, att protocol.Attestation) error {
	if subtle.ConstantTimeCompare([]byte(att.RuntimeData.Nonce), []byte(sess.nonce)) != 1 {
		return errors.New("the nonce in the handshake session is different from the client side")
	}
	if err := teekey.ValidatePublic(att.RuntimeData.TeePubKey); err != nil {
		return err
	}
	if att.InitData != nil && att.InitData.Format != "toml" {
		return fmt.Errorf("unsupported initdata format %q", att.InitData.Format)
	}
	// Trustee hashes with sha384 for every TEE but IBM SE.
	digest, err := protocol.RuntimeDataDigest("sha384", att.RuntimeData.Nonce, att.RuntimeData.TeePubKey, att.TeeEvidence.AdditionalEvidence)
	if err != nil {
		return err
	}
	switch sess.tee {
	case protocol.TEESample:
		return verifySample(att.TeeEvidence.PrimaryEvidence, digest)
	case protocol.TEETDX:
		return verifyTDX(att.TeeEvidence.PrimaryEvidence, digest, att.InitData, s.cfg.TDX, s.cfg.Now())
	}
	return fmt.Errorf("no verifier for TEE %q", sess.tee)
}

// attestedSession finds the caller's attested session: cookie first, then
// bearer token, as Trustee does.
func (s *Server) attestedSession(r *http.Request) (session, error) {
	if c, err := r.Cookie(protocol.SessionCookie); err == nil {
		sess, err := s.sessions.lookup(c.Value)
		if err == nil && sess.attested {
			return sess, nil
		}
		if err == nil {
			err = errors.New("session is not attested")
		}
		return session{}, err
	}
	if tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
		return s.sessions.lookupToken(tok)
	}
	return session{}, errors.New("no session cookie or bearer token")
}

func (s *Server) resourceID(w http.ResponseWriter, r *http.Request) (protocol.ResourceID, bool) {
	id, err := protocol.ParseResourceID(r.PathValue("path"))
	if err != nil {
		s.fail(w, protocol.NewServerError(http.StatusNotFound, "InvalidRequestPath", "Invalid request path: "+err.Error()))
		return protocol.ResourceID{}, false
	}
	return id, true
}

func (s *Server) getResource(w http.ResponseWriter, r *http.Request) {
	id, ok := s.resourceID(w, r)
	if !ok {
		return
	}
	sess, err := s.attestedSession(r)
	if err != nil {
		s.fail(w, protocol.NewServerError(http.StatusUnauthorized, "TokenNotFound", "Attestation Token not found: "+err.Error()))
		return
	}
	if allowed, rule := s.policy.Allows(id, sess.tee); !allowed {
		s.log.Warn("resource denied by policy", "resource", id.String(), "tee", sess.tee, "rule", rule)
		s.fail(w, protocol.NewServerError(http.StatusUnauthorized, "PolicyDeny", "Access denied by policy"))
		return
	}
	data, ok := s.store.get(id)
	if !ok {
		s.fail(w, protocol.NewServerError(http.StatusUnauthorized, "PluginInternalError", "Plugin internal error: resource not found: "+id.Path()))
		return
	}
	jwe, err := teekey.Encrypt(sess.pubkey, data)
	clear(data)
	if err != nil {
		s.log.Error("resource encryption failed", "resource", id.String(), "err", err)
		s.fail(w, protocol.NewServerError(http.StatusUnauthorized, "JWEFailed", "JWE encryption failed"))
		return
	}
	s.log.Info("resource released", "resource", id.String(), "tee", sess.tee)
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(jwe)
}

// adminOK compares hashes so neither content nor length leaks by timing.
func (s *Server) adminOK(w http.ResponseWriter, r *http.Request) bool {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	sum := sha256.Sum256([]byte(tok))
	if !ok || subtle.ConstantTimeCompare(sum[:], s.adminSum[:]) != 1 {
		s.log.Warn("admin request refused", "method", r.Method, "path", r.URL.Path)
		s.fail(w, protocol.NewServerError(http.StatusUnauthorized, "AdminAuth", "Admin auth error: missing or wrong admin bearer token"))
		return false
	}
	return true
}

func (s *Server) putResource(w http.ResponseWriter, r *http.Request) {
	if !s.adminOK(w, r) {
		return
	}
	id, ok := s.resourceID(w, r)
	if !ok {
		return
	}
	data, ok := s.readBody(w, r)
	if !ok {
		return
	}
	s.store.put(id, data)
	clear(data)
	s.log.Info("resource stored in memory", "resource", id.String(), "bytes", len(data))
	w.WriteHeader(http.StatusOK)
}

func (s *Server) deleteResource(w http.ResponseWriter, r *http.Request) {
	if !s.adminOK(w, r) {
		return
	}
	id, ok := s.resourceID(w, r)
	if !ok {
		return
	}
	if !s.store.delete(id) {
		s.fail(w, protocol.NewServerError(http.StatusUnauthorized, "PluginInternalError", "Plugin internal error: resource not found: "+id.Path()))
		return
	}
	s.log.Info("resource deleted", "resource", id.String())
	w.WriteHeader(http.StatusOK)
}
