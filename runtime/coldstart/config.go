package coldstart

import (
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/veil-ai/veil/internal/boundedio"

	"github.com/veil-ai/veil/kbsclient"
	"github.com/veil-ai/veil/runtime/sealed"
)

// EnvResourceID is the variable KServe's confidential model serving injects
// with the model key's KBS resource id.
const EnvResourceID = "CONFIDENTIAL_RESOURCE_ID"

// Key sources.
const (
	KeySourceCDH = "cdh" // the in-pod Confidential Data Hub (production, CoCo)
	KeySourceKBS = "kbs" // RCAR to the KBS directly with our own evidence
)

// DefaultDeadline bounds key release, retries included.
const DefaultDeadline = 5 * time.Minute

// maxCertBytes bounds the KBS CA certificate file.
const maxCertBytes = 1 << 20

// Config configures cold start. The zero value (no ResourceID) means the
// model is not sealed.
type Config struct {
	// ResourceID is the model key, kbs:///<repo>/<type>/<tag>.
	ResourceID string
	// KeySource is KeySourceCDH or KeySourceKBS.
	KeySource string
	// CDHAddr is the Confidential Data Hub base URL (cdh).
	CDHAddr string
	// KBSURL is the KBS base URL (kbs).
	KBSURL string
	// KBSCert is a PEM file with the CA of the KBS's HTTPS certificate (kbs).
	KBSCert string
	// TEE is the evidence kind for kbs: tdx, or sample (development only).
	TEE string
	// AllowInsecureSampleTEE permits the sample TEE. INSECURE.
	AllowInsecureSampleTEE bool
	// Deadline bounds fetching the key, retries included.
	Deadline time.Duration
	// OpenSSLCipher is the cipher of openssl-format models: auto, aes-256-cbc
	// or aes-256-cfb.
	OpenSSLCipher string
}

// RegisterFlags adds the cold-start flags to fs, KServe style: the resource
// id defaults to $CONFIDENTIAL_RESOURCE_ID (getenv nil means os.Getenv).
func (c *Config) RegisterFlags(fs *flag.FlagSet, getenv func(string) string) {
	if getenv == nil {
		getenv = os.Getenv
	}
	fs.StringVar(&c.ResourceID, "resource_id", getenv(EnvResourceID), "KBS resource id of the sealed model's key, kbs:///<repo>/<type>/<tag> (default $"+EnvResourceID+")")
	fs.StringVar(&c.KeySource, "key_source", KeySourceCDH, "where the model key comes from: cdh (Confidential Data Hub in the CoCo pod) or kbs (attest to the KBS directly)")
	fs.StringVar(&c.CDHAddr, "cdh_addr", kbsclient.DefaultCDHAddr, "Confidential Data Hub address (key_source cdh)")
	fs.StringVar(&c.KBSURL, "kbs_url", "", "KBS base URL (key_source kbs)")
	fs.StringVar(&c.KBSCert, "kbs_cert", "", "PEM CA certificate of the KBS's HTTPS certificate (key_source kbs)")
	fs.StringVar(&c.TEE, "tee", "tdx", "evidence for key_source kbs: tdx, or sample with --insecure_allow_sample_tee")
	fs.BoolVar(&c.AllowInsecureSampleTEE, "insecure_allow_sample_tee", false, "INSECURE, development only: attest with the sample TEE, which proves nothing")
	fs.DurationVar(&c.Deadline, "key_deadline", DefaultDeadline, "give up fetching the model key after this long (the runtime then exits non-zero)")
	fs.StringVar(&c.OpenSSLCipher, "openssl_cipher", "auto", "cipher of openssl-sealed models: auto, aes-256-cbc or aes-256-cfb")
}

// Validate checks the configuration without touching the network.
func (c Config) Validate() error {
	if c.ResourceID == "" {
		return errors.New("sealed model: no key configured; set " + EnvResourceID + " or --resource_id")
	}
	if _, err := kbsclient.ParseResourceID(c.ResourceID); err != nil {
		return err
	}
	if _, err := sealed.ParseOpenSSLCipher(c.OpenSSLCipher); err != nil {
		return err
	}
	if c.Deadline < 0 {
		return fmt.Errorf("--key_deadline %v is negative", c.Deadline)
	}
	switch c.KeySource {
	case KeySourceCDH:
		return nil
	case KeySourceKBS:
		if c.KBSURL == "" {
			return errors.New("--kbs_url is required with --key_source kbs")
		}
		if c.TEE == "sample" && !c.AllowInsecureSampleTEE {
			return errors.New("--tee sample proves nothing and is refused without --insecure_allow_sample_tee (development only)")
		}
		return nil
	}
	return fmt.Errorf("--key_source %q: want cdh or kbs", c.KeySource)
}

// newKeySource builds the kbsclient key source c asks for.
func (c Config) newKeySource(log *slog.Logger) (kbsclient.KeySource, error) {
	switch c.KeySource {
	case KeySourceCDH:
		return kbsclient.NewCDH(kbsclient.CDHConfig{Addr: c.CDHAddr, Logger: log}), nil
	case KeySourceKBS:
		var ca []byte
		if c.KBSCert != "" {
			var err error
			if ca, err = boundedio.ReadFile(c.KBSCert, maxCertBytes); err != nil {
				return nil, fmt.Errorf("KBS certificate: %w", err)
			}
		}
		return kbsclient.NewKBS(kbsclient.KBSConfig{
			URL: c.KBSURL, CACertPEM: ca, TEE: c.TEE,
			AllowInsecureSampleTEE: c.AllowInsecureSampleTEE, Logger: log,
		})
	}
	return nil, fmt.Errorf("--key_source %q: want cdh or kbs", c.KeySource)
}
