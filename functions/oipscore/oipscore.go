// Package oipscore adapts the OIP client to the batcher: one batch of
// scaled rows becomes one FP32 [n, width] input tensor, and the model's
// first (or named) output becomes one score per row.
package oipscore

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"sync"

	"github.com/veil-ai/veil/functions/batcher"
	"github.com/veil-ai/veil/oip"
	"github.com/veil-ai/veil/oip/client"
)

// Config names the model and its tensors.
type Config struct {
	Model      string
	Version    string // "" = the server's default
	InputName  string // e.g. dense_input
	OutputName string // "" = the first output
}

// Inferer implements batcher.Inferer over an OIP client.
type Inferer struct {
	cfg  Config
	c    *client.Client
	bufs sync.Pool // *[]byte for input tensors
}

// New wraps c; the caller keeps ownership of c.
func New(cfg Config, c *client.Client) (*Inferer, error) {
	if cfg.Model == "" || cfg.InputName == "" {
		return nil, errors.New("oipscore: model and input names are required")
	}
	if c == nil {
		return nil, errors.New("oipscore: nil client")
	}
	return &Inferer{cfg: cfg, c: c, bufs: sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}}, nil
}

var _ batcher.Inferer = (*Inferer)(nil)

// Infer sends one request for the n rows.
func (s *Inferer) Infer(ctx context.Context, rows []float32, n, width int) (batcher.Output, error) {
	if len(rows) != n*width {
		return batcher.Output{}, fmt.Errorf("oipscore: %d values for %d rows of %d", len(rows), n, width)
	}
	bp := s.bufs.Get().(*[]byte)
	raw := (*bp)[:0]
	for _, v := range rows {
		raw = binary.LittleEndian.AppendUint32(raw, math.Float32bits(v))
	}
	// The pooled buffer may go back only after the request is encoded and
	// sent, which Infer guarantees by returning.
	defer func() { *bp = raw; s.bufs.Put(bp) }()
	in := []oip.Tensor{{Name: s.cfg.InputName, Datatype: oip.FP32, Shape: []int64{int64(n), int64(width)}, Raw: raw}}
	var opts []client.InferOption
	if s.cfg.Version != "" {
		opts = append(opts, client.WithVersion(s.cfg.Version))
	}
	if s.cfg.OutputName != "" {
		opts = append(opts, client.WithOutputs(s.cfg.OutputName))
	}
	resp, err := s.c.Infer(ctx, s.cfg.Model, in, opts...)
	if err != nil {
		return batcher.Output{}, err
	}
	scores, err := s.scores(resp, n)
	if err != nil {
		return batcher.Output{}, err
	}
	return batcher.Output{Scores: scores, Model: resp.ModelName, Version: resp.ModelVersion}, nil
}

// scores picks the score tensor: one FP32 (or FP64) value per row, shape
// [n] or [n,1].
func (s *Inferer) scores(resp *oip.InferResponse, n int) ([]float32, error) {
	var out *oip.Tensor
	for i := range resp.Outputs {
		if s.cfg.OutputName == "" || resp.Outputs[i].Name == s.cfg.OutputName {
			out = &resp.Outputs[i]
			break
		}
	}
	if out == nil {
		return nil, fmt.Errorf("oipscore: response has no output %q", s.cfg.OutputName)
	}
	count, err := oip.ElementCount(out.Shape)
	if err != nil || count != int64(n) || len(out.Shape) == 0 || out.Shape[0] != int64(n) {
		return nil, fmt.Errorf("oipscore: output %q has shape %v, want [%d] or [%d,1]", out.Name, out.Shape, n, n)
	}
	scores := make([]float32, n)
	switch out.Datatype {
	case oip.FP32:
		if len(out.Raw) != 4*n {
			return nil, fmt.Errorf("oipscore: output %q has %d bytes for %d FP32", out.Name, len(out.Raw), n)
		}
		for i := range scores {
			scores[i] = math.Float32frombits(binary.LittleEndian.Uint32(out.Raw[4*i:]))
		}
	case oip.FP64:
		if len(out.Raw) != 8*n {
			return nil, fmt.Errorf("oipscore: output %q has %d bytes for %d FP64", out.Name, len(out.Raw), n)
		}
		for i := range scores {
			scores[i] = float32(math.Float64frombits(binary.LittleEndian.Uint64(out.Raw[8*i:])))
		}
	default:
		return nil, fmt.Errorf("oipscore: output %q is %s, want FP32 or FP64", out.Name, out.Datatype)
	}
	return scores, nil
}
