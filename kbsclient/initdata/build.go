package initdata

import (
	"bytes"
	_ "embed"
	"encoding/pem"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/pelletier/go-toml/v2"
)

// DefaultAgentPolicy is the kata-agent policy used when Config.AgentPolicy is
// empty: the host may run the pod's containers and read their logs (Veil
// never logs keys, models or transactions) but may not exec into them, write
// to their stdin or replace the policy.
//
//go:embed default-agent-policy.rego
var DefaultAgentPolicy string

// CDHSocket is where the Confidential Data Hub listens inside the guest.
const CDHSocket = "unix:///run/confidential-containers/cdh.sock"

// Config holds what the guest components need to reach Trustee.
type Config struct {
	// KBSURL is the Trustee KBS base URL as seen from the pod VM, e.g. the
	// passthrough Route https://kbs-route-trustee-operator-system.apps.example.com.
	KBSURL string
	// KBSCertPEM is the PEM certificate the guest pins for KBSURL; empty
	// means the guest's system trust store decides.
	KBSCertPEM string
	// AgentPolicy is the kata-agent rego policy; empty selects
	// DefaultAgentPolicy.
	AgentPolicy string
	// ImagePolicyURI optionally points the CDH at a container image
	// signature policy held by Trustee (kbs:///repo/type/tag).
	ImagePolicyURI string
	// Algorithm is the digest algorithm; empty selects sha256, the only one
	// Azure vTPM (PCR 8) binding supports.
	Algorithm Algorithm
}

type aaConfig struct {
	TokenConfigs aaTokenConfigs `toml:"token_configs"`
}

type aaTokenConfigs struct {
	KBS aaKBS `toml:"kbs"`
}

type aaKBS struct {
	URL  string `toml:"url"`
	Cert string `toml:"cert,multiline,omitempty"`
}

type cdhConfig struct {
	Socket      string    `toml:"socket"`
	Credentials []string  `toml:"credentials"`
	KBC         cdhKBC    `toml:"kbc"`
	Image       *cdhImage `toml:"image,omitempty"`
}

type cdhKBC struct {
	Name    string `toml:"name"`
	URL     string `toml:"url"`
	KBSCert string `toml:"kbs_cert,multiline,omitempty"`
}

type cdhImage struct {
	ImageSecurityPolicyURI string `toml:"image_security_policy_uri"`
}

// Build assembles the initdata document for cfg.
func Build(cfg Config) (Document, error) {
	if err := cfg.validate(); err != nil {
		return Document{}, err
	}
	alg := cfg.Algorithm
	if alg == "" {
		alg = SHA256
	}
	cert := strings.TrimSpace(cfg.KBSCertPEM)
	if cert != "" {
		cert += "\n" // keep the PEM block newline-terminated
	}
	aa, err := marshalTOML(aaConfig{TokenConfigs: aaTokenConfigs{KBS: aaKBS{URL: cfg.KBSURL, Cert: cert}}})
	if err != nil {
		return Document{}, fmt.Errorf("initdata: aa.toml: %w", err)
	}
	cdh := cdhConfig{
		Socket:      CDHSocket,
		Credentials: []string{},
		KBC:         cdhKBC{Name: "cc_kbc", URL: cfg.KBSURL, KBSCert: cert},
	}
	if cfg.ImagePolicyURI != "" {
		cdh.Image = &cdhImage{ImageSecurityPolicyURI: cfg.ImagePolicyURI}
	}
	cdhText, err := marshalTOML(cdh)
	if err != nil {
		return Document{}, fmt.Errorf("initdata: cdh.toml: %w", err)
	}
	policy := cfg.AgentPolicy
	if strings.TrimSpace(policy) == "" {
		policy = DefaultAgentPolicy
	}
	return Document{
		Version:   Version,
		Algorithm: alg,
		Data: map[string]string{
			EntryAA:     aa,
			EntryCDH:    cdhText,
			EntryPolicy: policy,
		},
	}, nil
}

func (cfg Config) validate() error {
	if cfg.KBSURL == "" {
		return errors.New("initdata: the KBS URL is required")
	}
	u, err := url.Parse(cfg.KBSURL)
	if err != nil {
		return fmt.Errorf("initdata: KBS URL %q: %w", cfg.KBSURL, err)
	}
	if (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return fmt.Errorf("initdata: KBS URL %q must be http(s)://host[:port]", cfg.KBSURL)
	}
	if u.Path != "" && u.Path != "/" || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("initdata: KBS URL %q must not carry a path, query or fragment (the guest appends /kbs/v0/...)", cfg.KBSURL)
	}
	if cfg.KBSCertPEM != "" {
		block, _ := pem.Decode([]byte(cfg.KBSCertPEM))
		if block == nil || block.Type != "CERTIFICATE" {
			return errors.New("initdata: the KBS certificate is not a PEM CERTIFICATE block")
		}
	}
	if cfg.ImagePolicyURI != "" && !strings.HasPrefix(cfg.ImagePolicyURI, "kbs:///") {
		return fmt.Errorf("initdata: image policy URI %q must be kbs:///repository/type/tag", cfg.ImagePolicyURI)
	}
	if cfg.Algorithm != "" {
		if _, err := cfg.Algorithm.newHash(); err != nil {
			return err
		}
	}
	return nil
}

func marshalTOML(v any) (string, error) {
	var buf bytes.Buffer
	if err := toml.NewEncoder(&buf).Encode(v); err != nil {
		return "", err
	}
	return buf.String(), nil
}
