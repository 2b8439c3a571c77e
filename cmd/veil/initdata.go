package main

import (
	"context"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/veil-ai/veil/internal/boundedio"

	"github.com/veil-ai/veil/kbsclient/initdata"
)

// initdataFlags is the configuration of `veil initdata`.
type initdataFlags struct {
	kbsURL         string
	kbsCertFile    string
	policyFile     string
	imagePolicyURI string
	algorithm      string
	tomlOut        string
}

// runInitdata builds the Kata initdata annotation value (written to stdout,
// so that it can be captured by a shell) and reports its digests on stderr;
// `veil initdata decode VALUE` inspects an existing value.
func runInitdata(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "decode" {
		return runInitdataDecode(args[1:], os.Stdin, stdout, stderr)
	}
	var f initdataFlags
	fs := flag.NewFlagSet("initdata", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&f.kbsURL, "kbs_url", "", "Trustee KBS base URL as reachable from the pod VM (required)")
	fs.StringVar(&f.kbsCertFile, "kbs_cert", "", "PEM certificate of the KBS to pin in the guest (optional)")
	fs.StringVar(&f.policyFile, "policy", "", "kata-agent policy (rego) file; default: Veil's built-in policy (no exec, no stdin)")
	fs.StringVar(&f.imagePolicyURI, "image_policy_uri", "", "kbs:/// URI of a container image signature policy for the CDH (optional)")
	fs.StringVar(&f.algorithm, "algorithm", string(initdata.SHA256), "digest algorithm: sha256 (required for Azure vTPM/PCR 8), sha384 or sha512")
	fs.StringVar(&f.tomlOut, "toml_out", "", "also write the TOML document to this file (the bytes that are measured)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: veil initdata --kbs_url URL [--kbs_cert FILE] [--policy FILE] [--algorithm sha256] [--toml_out FILE]")
		fmt.Fprintln(stderr, "       veil initdata decode VALUE|-")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	cfg, err := f.config()
	if err != nil {
		return err
	}
	doc, err := initdata.Build(cfg)
	if err != nil {
		return err
	}
	text, err := doc.Marshal()
	if err != nil {
		return err
	}
	value, err := initdata.Encode(text)
	if err != nil {
		return err
	}
	if f.tomlOut != "" {
		if err := os.WriteFile(f.tomlOut, text, 0o644); err != nil {
			return fmt.Errorf("write %s: %w", f.tomlOut, err)
		}
	}
	if _, err := fmt.Fprintln(stdout, value); err != nil {
		return fmt.Errorf("write annotation value: %w", err)
	}
	return writeDigestReport(stderr, text, doc.Algorithm)
}

func (f initdataFlags) config() (initdata.Config, error) {
	alg, err := initdata.ParseAlgorithm(f.algorithm)
	if err != nil {
		return initdata.Config{}, err
	}
	cfg := initdata.Config{KBSURL: f.kbsURL, ImagePolicyURI: f.imagePolicyURI, Algorithm: alg}
	if f.kbsCertFile != "" {
		pem, err := boundedio.ReadFile(f.kbsCertFile, maxConfigFileBytes)
		if err != nil {
			return initdata.Config{}, fmt.Errorf("read KBS certificate: %w", err)
		}
		cfg.KBSCertPEM = string(pem)
	}
	if f.policyFile != "" {
		policy, err := boundedio.ReadFile(f.policyFile, maxConfigFileBytes)
		if err != nil {
			return initdata.Config{}, fmt.Errorf("read agent policy: %w", err)
		}
		cfg.AgentPolicy = string(policy)
	}
	return cfg, nil
}

// runInitdataDecode prints the TOML carried by an annotation value ("-"
// reads it from stdin) and its digests.
func runInitdataDecode(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) != 1 {
		return errors.New("usage: veil initdata decode VALUE|-")
	}
	value := args[0]
	if value == "-" {
		raw, err := io.ReadAll(io.LimitReader(stdin, initdata.MaxAnnotationBytes+2))
		if err != nil {
			return fmt.Errorf("read annotation value from stdin: %w", err)
		}
		value = string(raw)
	}
	text, err := initdata.Decode(value)
	if err != nil {
		return err
	}
	doc, err := initdata.Parse(text)
	if err != nil {
		return err
	}
	if _, err := stdout.Write(text); err != nil {
		return fmt.Errorf("write TOML: %w", err)
	}
	return writeDigestReport(stderr, text, doc.Algorithm)
}

// writeDigestReport says which values the verifier will compare with the
// measured initdata, so that they can go into Trustee's reference values.
func writeDigestReport(w io.Writer, text []byte, alg initdata.Algorithm) error {
	digest, err := initdata.Digest(text, alg)
	if err != nil {
		return err
	}
	mr := initdata.MRConfigID(digest)
	var b strings.Builder
	fmt.Fprintf(&b, "annotation  %s (Kata >= 3.20; Kata 3.8-3.19: %s)\n", initdata.AnnotationKey, initdata.LegacyAnnotationKey)
	fmt.Fprintf(&b, "digest      %s:%s (over the %d-byte TOML document)\n", alg, hex.EncodeToString(digest), len(text))
	fmt.Fprintf(&b, "mrconfigid  %s (bare-metal TDX: digest zero-padded/truncated to 48 bytes)\n", hex.EncodeToString(mr[:]))
	if pcr, err := initdata.AzurePCR8(digest); err == nil {
		fmt.Fprintf(&b, "pcr8        %s (Azure TDX vTPM: sha256(32 zero bytes || digest))\n", hex.EncodeToString(pcr))
	} else {
		fmt.Fprintf(&b, "pcr8        n/a: %v\n", err)
	}
	if _, err := io.WriteString(w, b.String()); err != nil {
		return fmt.Errorf("write digest report: %w", err)
	}
	return nil
}
