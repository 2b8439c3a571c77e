package devkbs

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-tdx-guest/abi"
	pb "github.com/google/go-tdx-guest/proto/tdx"
	"github.com/google/go-tdx-guest/testing/testdata"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/veil-ai/veil/kbsclient/evidence"
	"github.com/veil-ai/veil/kbsclient/protocol"
	"github.com/veil-ai/veil/kbsclient/teekey"
)

const admin = "s3cret-admin"

// quoteEpoch is when go-tdx-guest's test quote certificates are valid (its
// own TestRawQuoteVerifyWithoutCollateral uses the same date).
var quoteEpoch = time.Date(2023, 7, 1, 0, 0, 0, 0, time.UTC)

func newServer(t *testing.T, mutate func(*Config)) *Server {
	t.Helper()
	cfg := Config{AdminToken: []byte(admin), AllowInsecureSampleTEE: true, Logger: slog.New(slog.DiscardHandler)}
	if mutate != nil {
		mutate(&cfg)
	}
	s, err := New(cfg)
	require.NoError(t, err)
	t.Cleanup(s.Close)
	return s
}

type reply struct {
	status int
	body   []byte
	cookie string
}

func call(t *testing.T, h http.Handler, method, path string, body []byte, hdr map[string]string) reply {
	t.Helper()
	req := httptest.NewRequest(method, path, bytes.NewReader(body))
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	r := reply{status: rec.Code, body: rec.Body.Bytes()}
	for _, c := range rec.Result().Cookies() {
		if c.Name == protocol.SessionCookie {
			r.cookie = c.Value
		}
	}
	return r
}

func errorOf(t *testing.T, r reply) *protocol.ServerError {
	t.Helper()
	var info protocol.ErrorInformation
	require.NoError(t, json.Unmarshal(r.body, &info), string(r.body))
	require.True(t, strings.HasPrefix(info.Type, protocol.ErrorTypePrefix), info.Type)
	return protocol.DecodeError(r.status, r.body)
}

func authBody(t *testing.T, version, tee string) []byte {
	req := protocol.NewRequest(tee)
	req.Version = version
	b, err := json.Marshal(req)
	require.NoError(t, err)
	return b
}

func TestHealthz(t *testing.T) {
	r := call(t, newServer(t, nil), http.MethodGet, "/healthz", nil, nil)
	assert.Equal(t, http.StatusOK, r.status)
	assert.Contains(t, string(r.body), "DEVELOPMENT ONLY")
}

func TestAuth(t *testing.T) {
	tests := []struct {
		name        string
		version     string
		tee         string
		allowSample bool
		wantStatus  int
		wantClass   error
		wantDetail  string
	}{
		{"tdx", "0.4.0", "tdx", false, 200, nil, ""},
		{"sample allowed", "0.4.0", "sample", true, 200, nil, ""},
		{"sample refused", "0.4.0", "sample", false, 401, protocol.ErrAttestationFailed, "--insecure_allow_sample_tee"},
		{"older client", "0.1.0", "tdx", false, 401, protocol.ErrVersionMismatch, "expect =0.4.0 while the request is 0.1.0"},
		{"newer client", "0.4.1", "tdx", false, 401, protocol.ErrVersionMismatch, "Protocol Version Mismatch"},
		{"unsupported tee", "0.4.0", "snp", false, 401, protocol.ErrAttestationFailed, "not supported"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newServer(t, func(c *Config) { c.AllowInsecureSampleTEE = tc.allowSample })
			r := call(t, s, http.MethodPost, protocol.PathAuth, authBody(t, tc.version, tc.tee), nil)
			require.Equal(t, tc.wantStatus, r.status, string(r.body))
			if tc.wantClass == nil {
				ch, err := protocol.DecodeChallenge(r.body)
				require.NoError(t, err)
				nonce, err := base64.StdEncoding.DecodeString(ch.Nonce)
				require.NoError(t, err)
				assert.Len(t, nonce, 32)
				assert.Len(t, r.cookie, 32)
				assert.JSONEq(t, `""`, string(ch.ExtraParams))
				return
			}
			se := errorOf(t, r)
			assert.ErrorIs(t, se, tc.wantClass)
			assert.Contains(t, se.Detail, tc.wantDetail)
		})
	}
}

// handshake runs /auth and returns the session cookie and the challenge.
func handshake(t *testing.T, h http.Handler, tee string) (string, protocol.Challenge) {
	t.Helper()
	r := call(t, h, http.MethodPost, protocol.PathAuth, authBody(t, protocol.Version, tee), nil)
	require.Equal(t, 200, r.status, string(r.body))
	ch, err := protocol.DecodeChallenge(r.body)
	require.NoError(t, err)
	return r.cookie, ch
}

func attestBody(t *testing.T, nonce string, pub protocol.TeePubKey, primary json.RawMessage) []byte {
	t.Helper()
	b, err := json.Marshal(protocol.Attestation{
		RuntimeData: protocol.RuntimeData{Nonce: nonce, TeePubKey: pub},
		TeeEvidence: protocol.CompositeEvidence{PrimaryEvidence: primary},
	})
	require.NoError(t, err)
	return b
}

func sampleEvidence(t *testing.T, digest []byte) json.RawMessage {
	t.Helper()
	p, err := evidence.New(evidence.Config{TEE: "sample", AllowInsecureSampleTEE: true})
	require.NoError(t, err)
	ev, err := p.Evidence(context.Background(), digest)
	require.NoError(t, err)
	return ev
}

func newKey(t *testing.T) (*teekey.Key, protocol.TeePubKey) {
	t.Helper()
	k, err := teekey.Generate(teekey.ECDHP256)
	require.NoError(t, err)
	pub, err := k.Public()
	require.NoError(t, err)
	return k, pub
}

func TestAttestSample(t *testing.T) {
	s := newServer(t, nil)
	_, pub := newKey(t)
	good := func(nonce string) json.RawMessage {
		d, err := protocol.RuntimeDataDigest("sha384", nonce, pub, "")
		require.NoError(t, err)
		return sampleEvidence(t, d)
	}
	tests := []struct {
		name     string
		build    func(cookie, nonce string) (map[string]string, []byte)
		wantOK   bool
		wantText string
	}{
		{"valid", func(c, n string) (map[string]string, []byte) {
			return map[string]string{"Cookie": protocol.SessionCookie + "=" + c}, attestBody(t, n, pub, good(n))
		}, true, ""},
		{"no cookie", func(c, n string) (map[string]string, []byte) {
			return nil, attestBody(t, n, pub, good(n))
		}, false, "session not found"},
		{"unknown session", func(c, n string) (map[string]string, []byte) {
			return map[string]string{"Cookie": protocol.SessionCookie + "=feedface"}, attestBody(t, n, pub, good(n))
		}, false, "session not found"},
		{"other nonce", func(c, n string) (map[string]string, []byte) {
			return map[string]string{"Cookie": protocol.SessionCookie + "=" + c}, attestBody(t, "AAAA", pub, good("AAAA"))
		}, false, "nonce"},
		{"report data of another key", func(c, n string) (map[string]string, []byte) {
			_, other := newKey(t)
			d, err := protocol.RuntimeDataDigest("sha384", n, other, "")
			require.NoError(t, err)
			return map[string]string{"Cookie": protocol.SessionCookie + "=" + c}, attestBody(t, n, pub, sampleEvidence(t, d))
		}, false, "report_data does not match"},
		{"padded report data", func(c, n string) (map[string]string, []byte) {
			d, err := protocol.RuntimeDataDigest("sha384", n, pub, "")
			require.NoError(t, err)
			rd, err := protocol.TDXReportData(d)
			require.NoError(t, err)
			return map[string]string{"Cookie": protocol.SessionCookie + "=" + c}, attestBody(t, n, pub, sampleEvidence(t, rd[:]))
		}, false, "report_data does not match"},
		{"bad key", func(c, n string) (map[string]string, []byte) {
			bad := pub
			bad.X = "AAAA"
			return map[string]string{"Cookie": protocol.SessionCookie + "=" + c}, attestBody(t, n, bad, good(n))
		}, false, "coordinates"},
		{"garbage body", func(c, n string) (map[string]string, []byte) {
			return map[string]string{"Cookie": protocol.SessionCookie + "=" + c}, []byte("{")
		}, false, "decode attestation"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cookie, ch := handshake(t, s, "sample")
			hdr, body := tc.build(cookie, ch.Nonce)
			r := call(t, s, http.MethodPost, protocol.PathAttest, body, hdr)
			if tc.wantOK {
				require.Equal(t, 200, r.status, string(r.body))
				ar, err := protocol.DecodeAttestResponse(r.body)
				require.NoError(t, err)
				assert.NotEmpty(t, ar.Token)
				return
			}
			se := errorOf(t, r)
			assert.Equal(t, 401, se.Status)
			if strings.Contains(tc.wantText, "session") {
				assert.ErrorIs(t, se, protocol.ErrSessionExpired, "a missing session is answered so the client re-handshakes")
			} else {
				assert.ErrorIs(t, se, protocol.ErrAttestationFailed)
			}
			assert.Contains(t, se.Detail, tc.wantText)
		})
	}
}

func TestSessionExpiry(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s := newServer(t, func(c *Config) { c.Now = func() time.Time { return now }; c.SessionTTL = time.Minute })
	k, pub := newKey(t)
	cookie, ch := handshake(t, s, "sample")
	d, err := protocol.RuntimeDataDigest("sha384", ch.Nonce, pub, "")
	require.NoError(t, err)
	r := call(t, s, http.MethodPost, protocol.PathAttest, attestBody(t, ch.Nonce, pub, sampleEvidence(t, d)),
		map[string]string{"Cookie": protocol.SessionCookie + "=" + cookie})
	require.Equal(t, 200, r.status)
	ar, err := protocol.DecodeAttestResponse(r.body)
	require.NoError(t, err)

	require.Equal(t, 200, call(t, s, http.MethodPost, protocol.PathResource+"a/b/c", []byte("v"), map[string]string{"Authorization": "Bearer " + admin}).status)
	for _, hdr := range []map[string]string{
		{"Cookie": protocol.SessionCookie + "=" + cookie},
		{"Authorization": "Bearer " + ar.Token},
	} {
		r = call(t, s, http.MethodGet, protocol.PathResource+"a/b/c", nil, hdr)
		require.Equal(t, 200, r.status, string(r.body))
		pt, err := k.Decrypt(r.body)
		require.NoError(t, err)
		assert.Equal(t, "v", string(pt))
	}

	now = now.Add(2 * time.Minute)
	for _, hdr := range []map[string]string{
		{"Cookie": protocol.SessionCookie + "=" + cookie},
		{"Authorization": "Bearer " + ar.Token},
	} {
		se := errorOf(t, call(t, s, http.MethodGet, protocol.PathResource+"a/b/c", nil, hdr))
		assert.ErrorIs(t, se, protocol.ErrUnauthorized)
		assert.Contains(t, se.Detail, "expired")
	}
}

func TestResourceAccess(t *testing.T) {
	s := newServer(t, nil)
	tests := []struct {
		name      string
		method    string
		path      string
		body      []byte
		hdr       map[string]string
		status    int
		wantClass error
	}{
		{"upload without token", http.MethodPost, "a/b/c", []byte("x"), nil, 401, protocol.ErrUnauthorized},
		{"upload wrong token", http.MethodPost, "a/b/c", []byte("x"), map[string]string{"Authorization": "Bearer nope"}, 401, protocol.ErrUnauthorized},
		{"upload token prefix", http.MethodPost, "a/b/c", []byte("x"), map[string]string{"Authorization": "Bearer " + admin[:4]}, 401, protocol.ErrUnauthorized},
		{"upload bad path", http.MethodPost, "a/.b/c", []byte("x"), map[string]string{"Authorization": "Bearer " + admin}, 404, protocol.ErrNotFound},
		{"upload two segments", http.MethodPost, "a/b", []byte("x"), map[string]string{"Authorization": "Bearer " + admin}, 404, protocol.ErrNotFound},
		{"upload too large", http.MethodPost, "a/b/c", make([]byte, protocol.MaxBodyBytes+1), map[string]string{"Authorization": "Bearer " + admin}, 413, nil},
		{"upload ok", http.MethodPost, "a/b/c", []byte("x"), map[string]string{"Authorization": "Bearer " + admin}, 200, nil},
		{"get without session", http.MethodGet, "a/b/c", nil, nil, 401, protocol.ErrUnauthorized},
		{"get with unattested session", http.MethodGet, "a/b/c", nil, map[string]string{"Cookie": protocol.SessionCookie + "=x"}, 401, protocol.ErrUnauthorized},
		{"get with unknown bearer", http.MethodGet, "a/b/c", nil, map[string]string{"Authorization": "Bearer " + admin}, 401, protocol.ErrUnauthorized},
		{"delete wrong token", http.MethodDelete, "a/b/c", nil, map[string]string{"Authorization": "Bearer no"}, 401, protocol.ErrUnauthorized},
		{"delete ok", http.MethodDelete, "a/b/c", nil, map[string]string{"Authorization": "Bearer " + admin}, 200, nil},
		{"delete missing", http.MethodDelete, "a/b/c", nil, map[string]string{"Authorization": "Bearer " + admin}, 401, protocol.ErrKBSInternal},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := call(t, s, tc.method, protocol.PathResource+tc.path, tc.body, tc.hdr)
			require.Equal(t, tc.status, r.status, string(r.body))
			if tc.wantClass != nil {
				assert.ErrorIs(t, errorOf(t, r), tc.wantClass)
			}
		})
	}
	se := errorOf(t, call(t, s, http.MethodGet, "/kbs/v0/resource-policy", nil, nil))
	assert.Equal(t, "PluginNotFound", se.Variant())
	assert.ErrorIs(t, se, protocol.ErrNotFound)
}

func TestBoundedAuthBody(t *testing.T) {
	s := newServer(t, nil)
	big := bytes.Repeat([]byte(" "), protocol.MaxBodyBytes+10)
	r := call(t, s, http.MethodPost, protocol.PathAuth, big, nil)
	assert.Equal(t, http.StatusRequestEntityTooLarge, r.status)
}

func TestNewRequiresAdminToken(t *testing.T) {
	_, err := New(Config{})
	assert.ErrorContains(t, err, "admin token")
	_, err = New(Config{AdminToken: []byte("x"), Policy: &Policy{Rules: []Rule{{Effect: "allow", Path: "*/*/*", TEEs: []string{"snp"}}}}})
	assert.Error(t, err)
}

func TestCheckListenAddr(t *testing.T) {
	tests := []struct {
		addr    string
		tls     bool
		wantErr bool
	}{
		{"127.0.0.1:8080", false, false},
		{"[::1]:8080", false, false},
		{"localhost:0", false, false},
		{"0.0.0.0:8080", false, true},
		{":8080", false, true},
		{"10.0.0.5:8080", false, true},
		{"0.0.0.0:8443", true, false},
		{"nonsense", false, true},
	}
	for _, tc := range tests {
		t.Run(tc.addr, func(t *testing.T) {
			err := CheckListenAddr(tc.addr, tc.tls)
			assert.Equal(t, tc.wantErr, err != nil, "%v", err)
		})
	}
}

func TestServeLoopback(t *testing.T) {
	s := newServer(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	addrc := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- s.Serve(ctx, ServeConfig{Addr: "127.0.0.1:0", Ready: func(a net.Addr) { addrc <- a.String() }})
	}()
	addr := <-addrc
	resp, err := http.Get("http://" + addr + "/healthz")
	require.NoError(t, err)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Contains(t, string(b), "DEVELOPMENT ONLY")
	cancel()
	assert.NoError(t, <-done)
	assert.ErrorContains(t, s.Serve(context.Background(), ServeConfig{Addr: "0.0.0.0:0"}), "not loopback")
	assert.ErrorContains(t, s.Serve(context.Background(), ServeConfig{Addr: "0.0.0.0:0", TLSCert: "x"}), "both")
}

// TestTDXVerifier drives the tdx verifier with go-tdx-guest's real test
// quote: its signature chain verifies, but its REPORTDATA is fixed, so it
// can only match a runtime digest in checkQuoteReportData directly.
func TestTDXVerifier(t *testing.T) {
	quote, err := abi.QuoteToProto(testdata.RawQuote)
	require.NoError(t, err)
	var own [64]byte
	copy(own[:], quoteReportData(t, quote))
	require.NoError(t, checkQuoteReportData(quote, own))
	own[0] ^= 1
	assert.ErrorContains(t, checkQuoteReportData(quote, own), "REPORTDATA does not match")

	// The test quote's MRCONFIGID is zero: no init-data document hashes to it.
	doc := protocol.InitData{Format: "toml", Body: "version = \"0.1.0\"\nalgorithm = \"sha256\"\n[data]\n\"aa.toml\" = \"x\"\n"}
	assert.ErrorContains(t, checkQuoteInitData(quote, doc), "MRCONFIGID does not match")
	assert.ErrorContains(t, checkQuoteInitData(quote, protocol.InitData{Format: "toml", Body: "not = [toml"}), "init-data")

	ev := func(raw []byte) json.RawMessage {
		b, err := json.Marshal(protocol.TDXEvidence{Quote: base64.StdEncoding.EncodeToString(raw)})
		require.NoError(t, err)
		return b
	}
	digest := make([]byte, 48)
	err = verifyTDX(ev(testdata.RawQuote), digest, nil, TDXVerifyConfig{}, quoteEpoch)
	assert.ErrorContains(t, err, "REPORTDATA does not match", "signature passes, binding fails")

	tampered := append([]byte(nil), testdata.RawQuote...)
	tampered[0x250] ^= 0xff // inside the TD quote body (signed)
	err = verifyTDX(ev(tampered), digest, nil, TDXVerifyConfig{}, quoteEpoch)
	assert.ErrorContains(t, err, "verify TD quote signature")

	err = verifyTDX(ev([]byte("short")), digest, nil, TDXVerifyConfig{}, quoteEpoch)
	assert.ErrorContains(t, err, "parse TD quote")
}

// TestAttestTDXEndToEnd sends the test quote through /attest: the quote is
// genuine but not bound to this session, so the KBS must refuse it.
func TestAttestTDXEndToEnd(t *testing.T) {
	s := newServer(t, func(c *Config) { c.Now = func() time.Time { return quoteEpoch } })
	_, pub := newKey(t)
	cookie, ch := handshake(t, s, "tdx")
	primary, err := json.Marshal(protocol.TDXEvidence{Quote: base64.StdEncoding.EncodeToString(testdata.RawQuote)})
	require.NoError(t, err)
	r := call(t, s, http.MethodPost, protocol.PathAttest, attestBody(t, ch.Nonce, pub, primary),
		map[string]string{"Cookie": protocol.SessionCookie + "=" + cookie})
	se := errorOf(t, r)
	assert.ErrorIs(t, se, protocol.ErrAttestationFailed)
	assert.Contains(t, se.Detail, "REPORTDATA does not match")
}

func quoteReportData(t *testing.T, quote any) []byte {
	t.Helper()
	q, ok := quote.(*pb.QuoteV4)
	require.True(t, ok)
	return q.GetTdQuoteBody().GetReportData()
}
