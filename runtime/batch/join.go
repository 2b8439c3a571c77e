package batch

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/veil-ai/veil/oip"
)

// errUnsplittable reports outputs that are not row-aligned with the joined
// inputs, so they cannot be handed back by rows.
var errUnsplittable = errors.New("outputs are not row-aligned with the joined inputs")

// signature returns a request's row count and the key that requests must
// share to be joined: each input's name, datatype and trailing dimensions,
// in order. ok is false when the request must run alone: no inputs, an input
// without a first dimension, inputs disagreeing on the row count, zero rows,
// or data that does not fit its shape (the engine reports that error).
func signature(inputs []oip.Tensor) (rows int64, key string, ok bool) {
	if len(inputs) == 0 {
		return 0, "", false
	}
	var sb strings.Builder
	for i := range inputs {
		t := &inputs[i]
		if len(t.Shape) == 0 || t.Validate() != nil {
			return 0, "", false
		}
		if i == 0 {
			rows = t.Shape[0]
		} else if t.Shape[0] != rows {
			return 0, "", false
		}
		sb.WriteString(t.Name)
		sb.WriteByte(0)
		sb.WriteString(string(t.Datatype))
		for _, d := range t.Shape[1:] {
			sb.WriteByte(',')
			sb.WriteString(strconv.FormatInt(d, 10))
		}
		sb.WriteByte(0)
	}
	if rows <= 0 {
		return 0, "", false
	}
	return rows, sb.String(), true
}

// join concatenates the calls' inputs along dimension 0. Fixed-size data goes
// into pooled buffers that release hands back once the engine is done with
// them. Joined tensors carry no parameters: parameters describe one
// request's wire encoding, not the data the engine sees.
func join(pool *bufferPool, calls []*call, total int64) (joined []oip.Tensor, release func()) {
	first := calls[0].inputs
	joined = make([]oip.Tensor, len(first))
	var held []*[]byte
	for i := range first {
		t := &first[i]
		shape := slices.Clone(t.Shape)
		shape[0] = total
		jt := oip.Tensor{Name: t.Name, Datatype: t.Datatype, Shape: shape}
		if t.Datatype == oip.Bytes {
			n := 0
			for _, c := range calls {
				n += len(c.inputs[i].Strings)
			}
			jt.Strings = make([][]byte, 0, n)
			for _, c := range calls {
				jt.Strings = append(jt.Strings, c.inputs[i].Strings...)
			}
		} else {
			n := 0
			for _, c := range calls {
				n += len(c.inputs[i].Raw)
			}
			bp := pool.get(n)
			buf := (*bp)[:0]
			for _, c := range calls {
				buf = append(buf, c.inputs[i].Raw...)
			}
			jt.Raw = buf
			held = append(held, bp)
		}
		joined[i] = jt
	}
	return joined, func() {
		for _, bp := range held {
			pool.put(bp)
		}
	}
}

// split hands each call its rows of every output. The parts are sub-slices
// of the engine's outputs (no copy), capped so that an append by one caller
// can never write into a neighbour's rows.
func split(outputs []oip.Tensor, calls []*call, total int64) ([][]oip.Tensor, error) {
	parts := make([][]oip.Tensor, len(calls))
	for i := range parts {
		parts[i] = make([]oip.Tensor, len(outputs))
	}
	for j := range outputs {
		o := &outputs[j]
		if len(o.Shape) == 0 || o.Shape[0] != total {
			return nil, fmt.Errorf("output %q has shape %v for %d joined rows: %w", o.Name, o.Shape, total, errUnsplittable)
		}
		size := int64(len(o.Raw))
		if o.Datatype == oip.Bytes {
			size = int64(len(o.Strings))
		}
		if size%total != 0 {
			return nil, fmt.Errorf("output %q holds %d elements/bytes for %d rows: %w", o.Name, size, total, errUnsplittable)
		}
		perRow := size / total
		var off int64
		for i, c := range calls {
			end := off + c.rows*perRow
			shape := slices.Clone(o.Shape)
			shape[0] = c.rows
			p := oip.Tensor{Name: o.Name, Datatype: o.Datatype, Shape: shape, Parameters: o.Parameters}
			if o.Datatype == oip.Bytes {
				p.Strings = o.Strings[off:end:end]
			} else {
				p.Raw = o.Raw[off:end:end]
			}
			parts[i][j] = p
			off = end
		}
	}
	return parts, nil
}

// maxPooledBuffer keeps one unusually large batch from pinning its memory
// in the pool for the life of the process.
const maxPooledBuffer = 64 << 20

// bufferPool recycles the byte buffers that hold joined inputs.
type bufferPool struct{ p sync.Pool }

func (p *bufferPool) get(n int) *[]byte {
	if bp, ok := p.p.Get().(*[]byte); ok && cap(*bp) >= n {
		*bp = (*bp)[:n]
		return bp
	}
	b := make([]byte, n)
	return &b
}

func (p *bufferPool) put(bp *[]byte) {
	if cap(*bp) > maxPooledBuffer {
		return
	}
	p.p.Put(bp)
}
