package transaction

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
)

// Scaler is a fitted sklearn StandardScaler with the model's feature order:
// x' = (x - Mean) / Scale in float64, then cast to float32, which is how
// the model was trained.
type Scaler struct {
	Order []Column
	Mean  []float64
	Scale []float64
}

// scalerFile is the JSON form shipped beside the model (artifact/scaler.json).
type scalerFile struct {
	FeatureOrder []string  `json:"feature_order"`
	Mean         []float64 `json:"mean_"`
	Scale        []float64 `json:"scale_"`
	WithMean     *bool     `json:"with_mean"`
	WithStd      *bool     `json:"with_std"`
}

// ParseScaler reads a scaler.json. with_mean=false or with_std=false are
// honoured as sklearn does (mean 0, scale 1).
func ParseScaler(data []byte) (*Scaler, error) {
	var f scalerFile
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("parse scaler: %w", err)
	}
	n := len(f.FeatureOrder)
	if n == 0 {
		return nil, errors.New("parse scaler: feature_order is empty")
	}
	withMean := f.WithMean == nil || *f.WithMean
	withStd := f.WithStd == nil || *f.WithStd
	if withMean && len(f.Mean) != n {
		return nil, fmt.Errorf("parse scaler: %d features but %d means", n, len(f.Mean))
	}
	if withStd && len(f.Scale) != n {
		return nil, fmt.Errorf("parse scaler: %d features but %d scales", n, len(f.Scale))
	}
	s := &Scaler{Order: make([]Column, n), Mean: make([]float64, n), Scale: make([]float64, n)}
	var seen ColumnSet
	for i, name := range f.FeatureOrder {
		c, err := ParseColumn(name)
		if err != nil {
			return nil, fmt.Errorf("parse scaler: feature %d: %w", i, err)
		}
		if seen.Has(c) {
			return nil, fmt.Errorf("parse scaler: feature %q listed twice", name)
		}
		seen = seen.With(c)
		s.Order[i] = c
		s.Scale[i] = 1
		if withMean {
			s.Mean[i] = f.Mean[i]
		}
		if withStd {
			s.Scale[i] = f.Scale[i]
		}
		if math.IsNaN(s.Mean[i]) || math.IsInf(s.Mean[i], 0) || !(s.Scale[i] > 0) || math.IsInf(s.Scale[i], 0) {
			return nil, fmt.Errorf("parse scaler: feature %q has mean %g, scale %g", name, s.Mean[i], s.Scale[i])
		}
	}
	return s, nil
}

// Width is the number of model inputs per row.
func (s *Scaler) Width() int { return len(s.Order) }

// Required is the set of columns a transaction must carry.
func (s *Scaler) Required() ColumnSet {
	var set ColumnSet
	for _, c := range s.Order {
		set = set.With(c)
	}
	return set
}

// Transform appends the scaled model row of tx to dst.
func (s *Scaler) Transform(dst []float32, tx *Transaction) []float32 {
	for i, c := range s.Order {
		dst = append(dst, float32((tx.Values[c]-s.Mean[i])/s.Scale[i]))
	}
	return dst
}
