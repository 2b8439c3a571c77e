package kbsclient

import (
	"fmt"
	"log/slog"

	"github.com/veil-ai/veil/internal/boundedio"
)

// Key source names, as the runtime's --key_source flag spells them.
const (
	SourceCDH = "cdh"
	SourceKBS = "kbs"
)

// SourceConfig is the runtime's key-source configuration, one field per
// flag (--key_source, --cdh_addr, --kbs_url, --kbs_cert, --tee,
// --insecure_allow_sample_tee).
type SourceConfig struct {
	KeySource              string // "cdh" (default) or "kbs"
	CDHAddr                string // default DefaultCDHAddr
	KBSURL                 string // required for "kbs"
	KBSCertFile            string // PEM CA of the KBS's HTTPS certificate (optional)
	TEE                    string // "tdx" (default) or "sample"
	AllowInsecureSampleTEE bool
	Backoff                Backoff
	Logger                 *slog.Logger
}

// maxCertFileBytes bounds the CA certificate file.
const maxCertFileBytes = 1 << 20

// NewKeySource builds the KeySource the configuration names.
func NewKeySource(cfg SourceConfig) (KeySource, error) {
	switch cfg.KeySource {
	case "", SourceCDH:
		return NewCDH(CDHConfig{Addr: cfg.CDHAddr, Backoff: cfg.Backoff, Logger: cfg.Logger}), nil
	case SourceKBS:
		if cfg.KBSURL == "" {
			return nil, fmt.Errorf("key source kbs needs a KBS URL (--kbs_url)")
		}
		var ca []byte
		if cfg.KBSCertFile != "" {
			var err error
			if ca, err = boundedio.ReadFile(cfg.KBSCertFile, maxCertFileBytes); err != nil {
				return nil, fmt.Errorf("KBS certificate (--kbs_cert): %w", err)
			}
		}
		tee := cfg.TEE
		if tee == "" {
			tee = "tdx"
		}
		return NewKBS(KBSConfig{
			URL: cfg.KBSURL, CACertPEM: ca, TEE: tee,
			AllowInsecureSampleTEE: cfg.AllowInsecureSampleTEE,
			Backoff:                cfg.Backoff, Logger: cfg.Logger,
		})
	}
	return nil, fmt.Errorf("key source %q: want %s or %s", cfg.KeySource, SourceCDH, SourceKBS)
}
