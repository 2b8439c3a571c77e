package coldstart

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/veil-ai/veil/kbsclient"
	"github.com/veil-ai/veil/runtime/sealed"
)

// Options are the collaborators of a ColdStart.
type Options struct {
	// Metrics records phases; nil records nothing.
	Metrics *Metrics
	// Logger receives the one cold-start line; default slog.Default().
	Logger *slog.Logger
	// KeySource replaces the one Config asks for (tests, other sources).
	KeySource kbsclient.KeySource
}

// ColdStart releases a sealed model's key and decrypts it.
type ColdStart struct {
	cfg     Config
	id      kbsclient.ResourceID
	cipher  sealed.OpenSSLCipher
	src     kbsclient.KeySource
	metrics *Metrics
	log     *slog.Logger
}

// New validates cfg and prepares the key source; nothing is fetched yet.
func New(cfg Config, opts Options) (*ColdStart, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if cfg.Deadline == 0 {
		cfg.Deadline = DefaultDeadline
	}
	if opts.KeySource != nil && cfg.KeySource == "" {
		cfg.KeySource = "custom"
	}
	if opts.KeySource == nil {
		if err := cfg.Validate(); err != nil {
			return nil, err
		}
	}
	id, err := kbsclient.ParseResourceID(cfg.ResourceID)
	if err != nil {
		return nil, err
	}
	cipher, err := sealed.ParseOpenSSLCipher(cfg.OpenSSLCipher)
	if err != nil {
		return nil, err
	}
	src := opts.KeySource
	if src == nil {
		if src, err = cfg.newKeySource(opts.Logger); err != nil {
			return nil, err
		}
	}
	return &ColdStart{cfg: cfg, id: id, cipher: cipher, src: src, metrics: opts.Metrics, log: opts.Logger}, nil
}

// Unsealed is a decrypted model waiting for its onnxruntime session.
type Unsealed struct {
	// Model is the plaintext ONNX model. Never write it anywhere; Finish
	// zeroes it.
	Model  []byte
	Format sealed.Format
	// Phases so far (session and total are filled in by Finish).
	Phases Phases

	cs    *ColdStart
	start time.Time
	done  bool
}

// Unseal fetches the key (retrying until the configured deadline) and
// decrypts sealedModel in memory. On success the caller creates its
// session from u.Model and then calls u.Finish, which records the session
// phase, zeroes the plaintext and logs the cold-start line. On failure the
// line is logged here and the error says why nothing will be served.
func (c *ColdStart) Unseal(ctx context.Context, sealedModel []byte) (*Unsealed, error) {
	start := time.Now()
	u := &Unsealed{cs: c, start: start, Format: sealed.Detect(sealedModel)}
	if u.Format == sealed.FormatPlain {
		return nil, c.fail(u, errors.New("model file is not sealed (neither JWE nor openssl); refusing to treat it as the sealed model"))
	}

	keyCtx, cancel := context.WithTimeout(ctx, c.cfg.Deadline)
	key, t, err := c.src.Resource(keyCtx, c.id)
	cancel()
	u.Phases.Evidence, u.Phases.Attest, u.Phases.Fetch, u.Phases.KeyAttempts = t.Evidence, t.Attest, t.Fetch, t.Attempts
	if err != nil {
		return nil, c.fail(u, fmt.Errorf("release model key %s via %s: %w", c.id, c.cfg.KeySource, err))
	}
	defer sealed.Zero(key)

	decStart := time.Now()
	model, err := sealed.Open(sealedModel, key, sealed.OpenOptions{OpenSSLCipher: c.cipher})
	u.Phases.Decrypt = time.Since(decStart)
	if err != nil {
		return nil, c.fail(u, fmt.Errorf("decrypt %s model with key %s: %w", u.Format, c.id, err))
	}
	u.Model = model
	return u, nil
}

// Finish ends the cold start after the caller tried to create its session
// from u.Model: session is how long that took, sessionErr its failure. It
// zeroes u.Model, records metrics, logs the one line, and returns
// sessionErr wrapped (nil on success). Calling it twice does nothing more.
func (u *Unsealed) Finish(session time.Duration, sessionErr error) error {
	if u.done {
		return sessionErr
	}
	u.done = true
	sealed.Zero(u.Model)
	u.Model = nil
	u.Phases.Session = session
	if sessionErr != nil {
		return u.cs.fail(u, fmt.Errorf("create session from the unsealed model: %w", sessionErr))
	}
	u.Phases.Total = time.Since(u.start)
	u.cs.metrics.observe(u.Phases, resultOK)
	u.cs.log.Info("cold start: sealed model loaded", u.cs.logAttrs(u)...)
	return nil
}

// Load is Unseal, then create(model) timed as the session phase, then
// Finish. create must not keep model: it is zeroed when create returns.
func (c *ColdStart) Load(ctx context.Context, sealedModel []byte, create func(model []byte) error) (Phases, error) {
	u, err := c.Unseal(ctx, sealedModel)
	if err != nil {
		return Phases{}, err
	}
	sessStart := time.Now()
	err = create(u.Model)
	err = u.Finish(time.Since(sessStart), err)
	return u.Phases, err
}

// fail records and logs a failed cold start and returns err.
func (c *ColdStart) fail(u *Unsealed, err error) error {
	u.done = true
	u.Phases.Total = time.Since(u.start)
	c.metrics.observe(u.Phases, failureClass(err))
	attrs := append(c.logAttrs(u), "err", err)
	c.log.Error("cold start failed: the model will not be served", attrs...)
	return err
}

func (c *ColdStart) logAttrs(u *Unsealed) []any {
	attrs := []any{
		"resource_id", c.id.String(), "key_source", c.cfg.KeySource, "format", u.Format.String(),
		"key_attempts", u.Phases.KeyAttempts,
	}
	if c.cfg.KeySource == KeySourceKBS {
		attrs = append(attrs, "tee", c.cfg.TEE)
	}
	// Milliseconds read the same in text and JSON logs (a Duration would
	// be nanoseconds in JSON).
	u.Phases.each(func(name string, d time.Duration) {
		attrs = append(attrs, slog.Float64(name+"_ms", float64(d.Microseconds())/1000))
	})
	return attrs
}
