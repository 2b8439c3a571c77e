package kbsclient_test

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	tdxtest "github.com/google/go-tdx-guest/testing"
	"github.com/google/go-tdx-guest/testing/testdata"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/veil-ai/veil/kbsclient"
	"github.com/veil-ai/veil/kbsclient/devkbs"
	"github.com/veil-ai/veil/kbsclient/evidence"
)

func TestNewKeySource(t *testing.T) {
	certFile := filepath.Join(t.TempDir(), "ca.pem")
	require.NoError(t, os.WriteFile(certFile, []byte("not a certificate"), 0o600))
	tests := []struct {
		name    string
		cfg     kbsclient.SourceConfig
		wantCDH bool
		wantErr string
	}{
		{name: "default is cdh", cfg: kbsclient.SourceConfig{}, wantCDH: true},
		{name: "cdh", cfg: kbsclient.SourceConfig{KeySource: "cdh", CDHAddr: "http://127.0.0.1:9"}, wantCDH: true},
		{name: "kbs sample", cfg: kbsclient.SourceConfig{KeySource: "kbs", KBSURL: "http://127.0.0.1:9", TEE: "sample", AllowInsecureSampleTEE: true}},
		{name: "kbs defaults to tdx", cfg: kbsclient.SourceConfig{KeySource: "kbs", KBSURL: "http://127.0.0.1:9"}},
		{name: "kbs without url", cfg: kbsclient.SourceConfig{KeySource: "kbs"}, wantErr: "--kbs_url"},
		{name: "kbs sample refused", cfg: kbsclient.SourceConfig{KeySource: "kbs", KBSURL: "http://127.0.0.1:9", TEE: "sample"}, wantErr: "insecure_allow_sample_tee"},
		{name: "kbs azure", cfg: kbsclient.SourceConfig{KeySource: "kbs", KBSURL: "http://127.0.0.1:9", TEE: "az-tdx-vtpm"}, wantErr: "--key_source cdh"},
		{name: "kbs missing cert", cfg: kbsclient.SourceConfig{KeySource: "kbs", KBSURL: "https://k:1", KBSCertFile: "/nonexistent"}, wantErr: "--kbs_cert"},
		{name: "kbs bad cert", cfg: kbsclient.SourceConfig{KeySource: "kbs", KBSURL: "https://k:1", KBSCertFile: certFile}, wantErr: "no PEM certificate"},
		{name: "unknown", cfg: kbsclient.SourceConfig{KeySource: "vault"}, wantErr: "want cdh or kbs"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.Logger = quiet
			src, err := kbsclient.NewKeySource(tc.cfg)
			if tc.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tc.wantErr)
				return
			}
			require.NoError(t, err)
			_, isCDH := src.(*kbsclient.CDH)
			assert.Equal(t, tc.wantCDH, isCDH)
		})
	}
}

func TestRedirectRefused(t *testing.T) {
	ts := httptest.NewServer(http.RedirectHandler("http://example.invalid/", http.StatusTemporaryRedirect))
	defer ts.Close()
	c := sampleClient(t, ts.URL, nil)
	_, tm, err := c.Resource(ctxWithin(t, 10*time.Second), mustID(t, "default/k/x"))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "redirected")
	assert.Equal(t, 1, tm.Attempts)
}

// anyReportDataQuotes answers go-tdx-guest's genuine test quote whatever
// REPORTDATA is asked for, like a TD whose quote is not bound to the session.
type anyReportDataQuotes struct{}

func (anyReportDataQuotes) IsSupported() error { return nil }
func (anyReportDataQuotes) GetRawQuote([64]byte) ([]uint8, error) {
	return append([]byte(nil), testdata.RawQuote...), nil
}

// TestLoopbackTDX runs the real tdx client path (evidence via a go-tdx-guest
// quote provider) against the dev KBS's tdx verifier.
func TestLoopbackTDX(t *testing.T) {
	quoteEpoch := time.Date(2023, 7, 1, 0, 0, 0, 0, time.UTC)
	ts := httptest.NewServer(newDevKBS(t, func(c *devkbs.Config) { c.Now = func() time.Time { return quoteEpoch } }))
	defer ts.Close()
	upload(t, ts.URL, "default/k/tdx", secret)

	t.Run("unbound quote is rejected", func(t *testing.T) {
		c, err := kbsclient.NewKBS(kbsclient.KBSConfig{URL: ts.URL, TEE: "tdx", Logger: quiet, Backoff: fastBackoff,
			TDX: evidence.TDXConfig{QuoteSource: anyReportDataQuotes{}, CCELPath: filepath.Join(t.TempDir(), "none")}})
		require.NoError(t, err)
		_, tm, err := c.Resource(ctxWithin(t, 10*time.Second), mustID(t, "default/k/tdx"))
		require.ErrorIs(t, err, kbsclient.ErrAttestationFailed)
		assert.Contains(t, err.Error(), "REPORTDATA does not match")
		assert.Equal(t, 1, tm.Attempts)
		assert.Positive(t, tm.Evidence)
	})

	t.Run("mock provider only answers the expected REPORTDATA", func(t *testing.T) {
		// Programmed for the wrong REPORTDATA, the fake returns no quote:
		// proof the client asks for exactly digest‖zeros.
		qp, err := tdxtest.TcQuoteProvider(tdxtest.TestCases())
		require.NoError(t, err)
		c, err := kbsclient.NewKBS(kbsclient.KBSConfig{URL: ts.URL, TEE: "tdx", Logger: quiet, Backoff: fastBackoff,
			TDX: evidence.TDXConfig{QuoteSource: qp}})
		require.NoError(t, err)
		_, _, err = c.Resource(ctxWithin(t, 300*time.Millisecond), mustID(t, "default/k/tdx"))
		require.Error(t, err)
		assert.Contains(t, err.Error(), "empty quote")
	})
}
