package kbsclient

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"strings"

	"github.com/veil-ai/veil/kbsclient/protocol"
)

// AdminConfig configures the KBS admin client.
type AdminConfig struct {
	URL        string // KBS base URL
	CACertPEM  []byte // trust anchor for HTTPS; empty = system roots
	Token      string // admin bearer token
	HTTPClient *http.Client
}

// Admin uploads resources to a KBS (POST /kbs/v0/resource/... with an admin
// bearer token), like `kbs-client config set-resource`.
type Admin struct {
	cfg  AdminConfig
	base string
	http *http.Client
}

// NewAdmin builds an admin client.
func NewAdmin(cfg AdminConfig) (*Admin, error) {
	if !strings.HasPrefix(cfg.URL, "http://") && !strings.HasPrefix(cfg.URL, "https://") {
		return nil, fmt.Errorf("KBS URL %q: want http(s)://host:port", cfg.URL)
	}
	if strings.TrimSpace(cfg.Token) == "" {
		return nil, fmt.Errorf("KBS admin: empty admin token")
	}
	hc := cfg.HTTPClient
	if hc == nil {
		var err error
		if hc, err = newHTTPClient(cfg.CACertPEM); err != nil {
			return nil, err
		}
	}
	return &Admin{cfg: cfg, base: strings.TrimRight(cfg.URL, "/"), http: hc}, nil
}

// Upload stores data as resource id.
func (a *Admin) Upload(ctx context.Context, id ResourceID, data []byte) error {
	if err := id.Valid(); err != nil {
		return err
	}
	if len(data) > protocol.MaxBodyBytes {
		return fmt.Errorf("upload %s: %d bytes exceeds the KBS limit of %d", id, len(data), protocol.MaxBodyBytes)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, a.base+protocol.PathResource+id.Path(), bytes.NewReader(data))
	if err != nil {
		return fmt.Errorf("upload %s: %w", id, err)
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	req.Header.Set("Authorization", "Bearer "+a.cfg.Token)
	resp, err := a.http.Do(req)
	if err != nil {
		return fmt.Errorf("upload %s: %w", id, err)
	}
	defer resp.Body.Close()
	body, err := readBounded(resp.Body)
	if err != nil {
		return fmt.Errorf("upload %s: %w", id, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("upload %s: %w", id, protocol.DecodeError(resp.StatusCode, body))
	}
	return nil
}
