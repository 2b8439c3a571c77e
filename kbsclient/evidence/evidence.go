// Package evidence produces the TEE evidence an RCAR attestation carries.
//
// The split follows go-tdx-guest: the pure encoding (which bytes go into
// REPORTDATA, the evidence JSON shape) lives in package protocol and is
// shared with the verifier; this package only talks to the hardware (or, for
// the insecure sample TEE, to nothing at all).
package evidence

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/veil-ai/veil/kbsclient/protocol"
)

// ErrInsecureTEE is returned when the sample TEE is requested without the
// explicit insecure-development opt-in.
var ErrInsecureTEE = errors.New("the sample TEE provides no security and is refused unless AllowInsecureSampleTEE (--insecure_allow_sample_tee) is set, for development only")

// ErrUnsupportedTEE is returned for TEEs this client cannot attest itself.
var ErrUnsupportedTEE = errors.New("TEE not supported by the built-in KBS client")

// Provider produces evidence binding a runtime-data digest.
type Provider interface {
	// TEE is the kbs-types TEE name sent in the auth request.
	TEE() string
	// Evidence returns the primary evidence JSON for the digest.
	Evidence(ctx context.Context, digest []byte) (json.RawMessage, error)
}

// Config selects and configures a provider.
type Config struct {
	// TEE is the kbs-types name: "tdx" or "sample".
	TEE string
	// AllowInsecureSampleTEE permits the sample TEE (no hardware, no
	// security): development and tests only.
	AllowInsecureSampleTEE bool
	// TDX configures the tdx provider.
	TDX TDXConfig
}

// New returns the provider for cfg.TEE.
func New(cfg Config) (Provider, error) {
	switch cfg.TEE {
	case protocol.TEETDX:
		return newTDX(cfg.TDX), nil
	case protocol.TEESample:
		if !cfg.AllowInsecureSampleTEE {
			return nil, ErrInsecureTEE
		}
		return sample{}, nil
	case "":
		return nil, fmt.Errorf("%w: no TEE configured (want %q, or %q with the insecure development flag)", ErrUnsupportedTEE, protocol.TEETDX, protocol.TEESample)
	case protocol.TEEAzTDXVTPM, protocol.TEEAzSNPVTPM, protocol.TEESNP, protocol.TEESGX,
		"cca", "csv", "se", "tpm", "nvidia", "hygondcu", "dpu", "sampledevice":
		return nil, fmt.Errorf("%w: %q evidence comes from the CoCo guest components; use the Confidential Data Hub path (--key_source cdh)", ErrUnsupportedTEE, cfg.TEE)
	default:
		return nil, fmt.Errorf("%w: unknown TEE %q (want %q or %q; other TEEs via --key_source cdh)", ErrUnsupportedTEE, cfg.TEE, protocol.TEETDX, protocol.TEESample)
	}
}

// sample is the insecure sample TEE: its "evidence" is the digest itself.
// Unexported so that only New, with AllowInsecureSampleTEE, can make one.
type sample struct{}

// TEE implements Provider.
func (sample) TEE() string { return protocol.TEESample }

// Evidence implements Provider; the KBS compares the unpadded digest.
func (sample) Evidence(_ context.Context, digest []byte) (json.RawMessage, error) {
	return json.Marshal(protocol.SampleEvidence{SVN: "1", ReportData: encodeStd(digest)})
}
