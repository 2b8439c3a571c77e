package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"time"

	"github.com/veil-ai/veil/internal/boundedio"

	"github.com/veil-ai/veil/kbsclient"
	"github.com/veil-ai/veil/kbsclient/devkbs"
	"github.com/veil-ai/veil/kbsclient/protocol"
)

const kbsUsage = `usage: veil kbs <subcommand> [flags]

The development Key Broker Service. DEVELOPMENT ONLY: resources live in
memory, tdx quotes are checked without collateral or TCB policy, and the
sample TEE offers no security. Use Trustee in production.

subcommands:
  serve   run the development KBS (DEVELOPMENT ONLY)
  upload  store a resource in a KBS (admin token; works with Trustee too)
  get     attest and fetch a resource, print only its size and SHA-256 (debugging)
`

// runKBS dispatches the kbs subcommands.
func runKBS(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stdout, kbsUsage)
		if len(args) == 0 {
			return errors.New("missing subcommand")
		}
		return nil
	}
	sub, rest := args[0], args[1:]
	switch sub {
	case "serve":
		return runKBSServe(ctx, rest, stdout, stderr)
	case "upload":
		return runKBSUpload(ctx, rest, stdout, stderr)
	case "get":
		return runKBSGet(ctx, rest, stdout, stderr)
	}
	fmt.Fprint(stderr, kbsUsage)
	return fmt.Errorf("unknown subcommand %q", sub)
}

func newKBSFlagSet(name, summary string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("veil kbs "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: veil kbs %s [flags]\n\n%s\n\nflags:\n", name, summary)
		fs.PrintDefaults()
	}
	return fs
}

func newLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

type kbsServeFlags struct {
	addr, adminTokenFile, policy, tlsCert, tlsKey string
	sessionTTL                                    time.Duration
	allowSample                                   bool
}

func runKBSServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var f kbsServeFlags
	fs := newKBSFlagSet("serve", "Run the development Key Broker Service (Trustee RCAR protocol 0.4.0). DEVELOPMENT ONLY:\nnever use it to protect real keys. Plain HTTP only on loopback; give --tls_cert/--tls_key to bind elsewhere.", stderr)
	fs.StringVar(&f.addr, "addr", "127.0.0.1:8080", "listen address (loopback unless TLS is configured; port 0 picks a free port)")
	fs.StringVar(&f.adminTokenFile, "admin_token_file", "", "file holding the admin bearer token; created with a random token (mode 0600) if missing (required)")
	fs.StringVar(&f.policy, "policy", "", "resource policy JSON file (default: any resource to an attested tdx TEE, plus sample with --insecure_allow_sample_tee)")
	fs.DurationVar(&f.sessionTTL, "session_ttl", devkbs.DefaultSessionTTL, "lifetime of an attestation session and its token")
	fs.StringVar(&f.tlsCert, "tls_cert", "", "TLS certificate PEM file (with --tls_key enables HTTPS)")
	fs.StringVar(&f.tlsKey, "tls_key", "", "TLS private key PEM file")
	fs.BoolVar(&f.allowSample, "insecure_allow_sample_tee", false, "INSECURE, development only: accept the sample TEE, which has no hardware evidence")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	if f.adminTokenFile == "" {
		return errors.New("--admin_token_file is required")
	}
	log := newLogger(stderr)
	token, created, err := loadOrCreateToken(f.adminTokenFile)
	if err != nil {
		return err
	}
	if created {
		fmt.Fprintf(stdout, "created admin token file %s (mode 0600)\n", f.adminTokenFile)
	}
	cfg := devkbs.Config{
		AdminToken:             []byte(token),
		SessionTTL:             f.sessionTTL,
		AllowInsecureSampleTEE: f.allowSample,
		Logger:                 log,
	}
	if f.policy != "" {
		data, err := boundedio.ReadFile(f.policy, maxConfigFileBytes)
		if err != nil {
			return fmt.Errorf("read policy: %w", err)
		}
		pol, err := devkbs.ParsePolicy(data)
		if err != nil {
			return fmt.Errorf("policy %s: %w", f.policy, err)
		}
		cfg.Policy = &pol
	}
	srv, err := devkbs.New(cfg)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, "veil kbs: DEVELOPMENT ONLY Key Broker Service — not for real keys")
	scheme := "http"
	if f.tlsCert != "" {
		scheme = "https"
	}
	return srv.Serve(ctx, devkbs.ServeConfig{
		Addr: f.addr, TLSCert: f.tlsCert, TLSKey: f.tlsKey,
		Ready: func(a net.Addr) { fmt.Fprintf(stdout, "listening on %s://%s\n", scheme, a) },
	})
}

// maxTokenFileBytes bounds the admin token file.
const maxTokenFileBytes = 4096

// loadOrCreateToken reads the admin token, creating the file with a fresh
// random token (0600, O_EXCL so an existing file is never overwritten).
func loadOrCreateToken(path string) (string, bool, error) {
	data, err := boundedio.ReadFile(path, maxTokenFileBytes)
	if err == nil {
		tok := strings.TrimSpace(string(data))
		if tok == "" {
			return "", false, fmt.Errorf("admin token file %s is empty", path)
		}
		return tok, false, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return "", false, err
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return "", false, fmt.Errorf("generate admin token: %w", err)
	}
	tok := base64.RawURLEncoding.EncodeToString(raw)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", false, fmt.Errorf("create admin token file: %w", err)
	}
	if _, err := io.WriteString(f, tok+"\n"); err != nil {
		f.Close()
		return "", false, fmt.Errorf("write admin token file: %w", err)
	}
	if err := f.Close(); err != nil {
		return "", false, fmt.Errorf("write admin token file: %w", err)
	}
	return tok, true, nil
}

func readCACert(path string) ([]byte, error) {
	if path == "" {
		return nil, nil
	}
	b, err := boundedio.ReadFile(path, 1<<20)
	if err != nil {
		return nil, fmt.Errorf("KBS certificate: %w", err)
	}
	return b, nil
}

func runKBSUpload(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newKBSFlagSet("upload", "Store a resource in a KBS with the admin token (POST /kbs/v0/resource/<repo>/<type>/<tag>).", stderr)
	kbsURL := fs.String("kbs_url", "", "KBS base URL, e.g. http://127.0.0.1:8080 (required)")
	tokenFile := fs.String("admin_token_file", "", "file holding the admin bearer token (required)")
	resourceID := fs.String("resource_id", "", "kbs:///<repo>/<type>/<tag> or <repo>/<type>/<tag> (required)")
	in := fs.String("in", "", "file whose bytes become the resource, at most 2 MiB (required)")
	kbsCert := fs.String("kbs_cert", "", "PEM CA certificate that signs the KBS's HTTPS certificate")
	timeout := fs.Duration("timeout", 30*time.Second, "overall deadline")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *kbsURL == "" || *tokenFile == "" || *resourceID == "" || *in == "" {
		fs.Usage()
		return errors.New("--kbs_url, --admin_token_file, --resource_id and --in are required")
	}
	id, err := kbsclient.ParseResourceID(*resourceID)
	if err != nil {
		return err
	}
	tok, err := boundedio.ReadFile(*tokenFile, maxTokenFileBytes)
	if err != nil {
		return fmt.Errorf("admin token: %w", err)
	}
	ca, err := readCACert(*kbsCert)
	if err != nil {
		return err
	}
	data, err := boundedio.ReadFile(*in, protocol.MaxBodyBytes)
	if err != nil {
		return fmt.Errorf("resource file: %w", err)
	}
	defer clear(data)
	admin, err := kbsclient.NewAdmin(kbsclient.AdminConfig{URL: *kbsURL, CACertPEM: ca, Token: strings.TrimSpace(string(tok))})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	if err := admin.Upload(ctx, id, data); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "uploaded %d bytes as %s to %s\n", len(data), id, *kbsURL)
	return nil
}

func runKBSGet(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newKBSFlagSet("get", "Attest and fetch a resource for debugging. Prints only the size and SHA-256 of the\nresource, never its bytes.", stderr)
	keySource := fs.String("key_source", "kbs", "kbs (attest to the KBS directly) or cdh (ask the Confidential Data Hub)")
	kbsURL := fs.String("kbs_url", "", "KBS base URL (with --key_source kbs)")
	cdhAddr := fs.String("cdh_addr", kbsclient.DefaultCDHAddr, "Confidential Data Hub address (with --key_source cdh)")
	resourceID := fs.String("resource_id", "", "kbs:///<repo>/<type>/<tag> or <repo>/<type>/<tag> (required)")
	kbsCert := fs.String("kbs_cert", "", "PEM CA certificate that signs the KBS's HTTPS certificate")
	tee := fs.String("tee", "tdx", "evidence: tdx, or sample with --insecure_allow_sample_tee")
	allowSample := fs.Bool("insecure_allow_sample_tee", false, "INSECURE, development only: attest with the sample TEE")
	timeout := fs.Duration("timeout", 30*time.Second, "overall deadline including retries")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *resourceID == "" {
		fs.Usage()
		return errors.New("--resource_id is required")
	}
	id, err := kbsclient.ParseResourceID(*resourceID)
	if err != nil {
		return err
	}
	log := newLogger(stderr)
	var src kbsclient.KeySource
	switch *keySource {
	case "cdh":
		src = kbsclient.NewCDH(kbsclient.CDHConfig{Addr: *cdhAddr, Logger: log})
	case "kbs":
		if *kbsURL == "" {
			return errors.New("--kbs_url is required with --key_source kbs")
		}
		ca, err := readCACert(*kbsCert)
		if err != nil {
			return err
		}
		src, err = kbsclient.NewKBS(kbsclient.KBSConfig{URL: *kbsURL, CACertPEM: ca, TEE: *tee, AllowInsecureSampleTEE: *allowSample, Logger: log})
		if err != nil {
			return err
		}
	default:
		return fmt.Errorf("--key_source %q: want kbs or cdh", *keySource)
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	data, tm, err := src.Resource(ctx, id)
	if err != nil {
		return err
	}
	sum := sha256.Sum256(data)
	n := len(data)
	kbsclient.Wipe(data)
	fmt.Fprintf(stdout, "%s: %d bytes, sha256 %s (evidence %s, attest %s, fetch %s, total %s, attempts %d)\n",
		id, n, hex.EncodeToString(sum[:]), tm.Evidence, tm.Attest, tm.Fetch, tm.Total, tm.Attempts)
	return nil
}
