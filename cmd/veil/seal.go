package main

import (
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/veil-ai/veil/kbsclient"
	"github.com/veil-ai/veil/models"
	"github.com/veil-ai/veil/runtime/sealed"
)

// defaultSealResourceID is where Veil's manifests expect the model key.
const defaultSealResourceID = "kbs:///default/veil/fraud-model-key"

// sealKeyBytes is the size of the fresh key: AES-256.
const sealKeyBytes = 32

// sealFlags is the configuration of `veil seal`.
type sealFlags struct {
	in, out, keyFile, alg, resourceID, kbsURL string
	force                                     bool
}

// runSeal encrypts a model directory with a fresh key for attested key
// release, and tells the operator how to hand the key to the KBS.
func runSeal(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var f sealFlags
	fs := flag.NewFlagSet("veil seal", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&f.in, "in", "", "model directory (version folders such as 1/model.onnx, plus artifact/ etc.); default: the embedded fraud model")
	fs.StringVar(&f.out, "out", "", "output directory for the sealed tree; must be new or empty (required)")
	fs.StringVar(&f.keyFile, "key", "", "file to write the fresh 256-bit key to, mode 0600 (required)")
	fs.StringVar(&f.alg, "alg", string(jose.A256KW), "JWE key management: A256KW (a fresh content key per file, wrapped) or dir (the key encrypts directly)")
	fs.StringVar(&f.resourceID, "resource_id", defaultSealResourceID, "KBS resource id the key will be stored as (only used in the printed commands)")
	fs.StringVar(&f.kbsURL, "kbs_url", "https://kbs.example:8080", "KBS URL for the printed commands")
	fs.BoolVar(&f.force, "force", false, "overwrite an existing key file")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: veil seal --out SEALED_DIR --key KEY_FILE [--in MODEL_DIR] [--alg A256KW|dir] [--resource_id kbs:///repo/type/tag]")
		fmt.Fprintln(stderr, "\nSeals every model.onnx as model.onnx.jwe (JWE, AES-256-GCM) with a fresh key; other files are copied as they are.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if f.out == "" || f.keyFile == "" {
		fs.Usage()
		return errors.New("--out and --key are required")
	}
	alg := jose.KeyAlgorithm(f.alg)
	if alg != jose.A256KW && alg != jose.DIRECT {
		return fmt.Errorf("--alg %q: want A256KW or dir", f.alg)
	}
	id, err := kbsclient.ParseResourceID(f.resourceID)
	if err != nil {
		return err
	}
	src, srcName := sealSource(f.in)

	key := make([]byte, sealKeyBytes)
	defer sealed.Zero(key)
	if _, err := rand.Read(key); err != nil {
		return fmt.Errorf("generate key: %w", err)
	}
	// The key goes to disk first: sealing without a saved key would make
	// the output undecryptable.
	if err := writeKeyFile(f.keyFile, key, f.force); err != nil {
		return err
	}
	files, err := sealed.SealTree(src, f.out, key, sealed.SealTreeOptions{Alg: alg})
	if err != nil {
		// A key that sealed nothing must not be mistaken for the real one.
		if rmErr := os.Remove(f.keyFile); rmErr != nil {
			err = errors.Join(err, fmt.Errorf("remove unused key file: %w", rmErr))
		}
		return err
	}
	for _, sf := range files {
		fmt.Fprintf(stdout, "sealed %s/%s -> %s/%s\n", srcName, sf.From, f.out, sf.To)
	}
	printSealNextSteps(stdout, f, id, alg)
	return nil
}

// sealSource is the tree to seal: the --in directory, or the embedded
// fraud model laid out as a KServe model directory.
func sealSource(in string) (fs.FS, string) {
	if in != "" {
		return os.DirFS(in), in
	}
	return models.FraudTree(), "(embedded fraud model)"
}

// writeKeyFile stores the raw key with mode 0600, never replacing an
// existing file unless force is set.
func writeKeyFile(path string, key []byte, force bool) error {
	flags := os.O_WRONLY | os.O_CREATE | os.O_EXCL
	if force {
		flags = os.O_WRONLY | os.O_CREATE | os.O_TRUNC
	}
	f, err := os.OpenFile(path, flags, 0o600)
	if errors.Is(err, os.ErrExist) {
		return fmt.Errorf("key file %s exists; refusing to overwrite it (the models it sealed would be lost) — pass --force to replace it", path)
	}
	if err != nil {
		return fmt.Errorf("create key file: %w", err)
	}
	// O_TRUNC keeps an old file's mode; make sure it is private.
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return fmt.Errorf("key file mode: %w", err)
	}
	if _, err := f.Write(key); err != nil {
		f.Close()
		return fmt.Errorf("write key file: %w", err)
	}
	return f.Close()
}

func printSealNextSteps(w io.Writer, f sealFlags, id kbsclient.ResourceID, alg jose.KeyAlgorithm) {
	fmt.Fprintf(w, `
The model is sealed with JWE %s + A256GCM under a fresh 256-bit key in %s (mode 0600).
Store the key in the KBS as %s, then delete the key file from this machine.

Trustee KBS (kbs-client v0.13-v0.20; from v0.21 use "config --admin-token-file TOKEN" instead of --auth-private-key):
  kbs-client --url %s config --auth-private-key ADMIN_PRIVATE_KEY.pem set-resource --resource-file %s --path %s

Veil development KBS (DEVELOPMENT ONLY):
  veil kbs upload --kbs_url %s --admin_token_file ADMIN_TOKEN_FILE --resource_id %s --in %s

Runtime: CONFIDENTIAL_RESOURCE_ID=%s (or --resource_id), with --key_source cdh inside a CoCo pod.
`, alg, f.keyFile, id, f.kbsURL, f.keyFile, id.Path(), f.kbsURL, id, f.keyFile, id)
}
