// Package gen makes synthetic card transactions from the dataset's
// measured statistics (shared/fraud-model/DATA.md): a deterministic seed,
// a fraud rate, log-normal distances and ratios and Bernoulli flags per
// class. Each transaction keeps its ground-truth label for the caller
// (precision/recall); the label is never put into the event. Send delivers
// them as CloudEvents at a target rate with retries; WriteJSONLines writes
// them as a dataset-like file.
package gen

import (
	"fmt"
	"iter"
	"math"
	"math/rand/v2"
	"strconv"

	"github.com/veil-ai/veil/functions/transaction"
)

// DefaultFraudRate is the dataset's measured fraud rate.
const DefaultFraudRate = 0.086

// classStats are one class's distribution parameters.
type classStats struct {
	// lnMean and lnSD of distance_from_home, distance_from_last_transaction,
	// ratio_to_median_purchase_price.
	lnMean, lnSD [3]float64
	// P(1) of repeat_retailer, used_chip, used_pin_number, online_order.
	p [4]float64
}

// From DATA.md (24,999 rows of the dataset).
var (
	legit = classStats{
		lnMean: [3]float64{2.270, -0.011, -0.119},
		lnSD:   [3]float64{1.355, 1.759, 1.000},
		p:      [4]float64{0.8835, 0.3608, 0.1113, 0.6178},
	}
	fraud = classStats{
		lnMean: [3]float64{2.819, 0.305, 1.308},
		lnSD:   [3]float64{1.807, 2.115, 1.132},
		p:      [4]float64{0.8805, 0.2422, 0.0046, 0.9572},
	}
)

// Labeled is one generated transaction with its ground truth. ID is the
// CloudEvent id (and so the transaction id).
type Labeled struct {
	ID          string
	Transaction transaction.Transaction
	Fraud       bool
}

// Config seeds a Generator.
type Config struct {
	Seed      uint64
	FraudRate float64 // 0 means DefaultFraudRate
	IDPrefix  string  // "" means "tx-<seed>"
}

// Generator produces the same sequence for the same Config.
type Generator struct {
	cfg Config
	rng *rand.Rand
	n   int
}

// NewGenerator checks cfg and seeds a generator.
func NewGenerator(cfg Config) (*Generator, error) {
	if cfg.FraudRate == 0 {
		cfg.FraudRate = DefaultFraudRate
	}
	if cfg.FraudRate < 0 || cfg.FraudRate > 1 || math.IsNaN(cfg.FraudRate) {
		return nil, fmt.Errorf("gen: fraud rate %v outside [0,1]", cfg.FraudRate)
	}
	if cfg.IDPrefix == "" {
		cfg.IDPrefix = "tx-" + strconv.FormatUint(cfg.Seed, 10)
	}
	return &Generator{cfg: cfg, rng: rand.New(rand.NewPCG(cfg.Seed, 0x7665696c))}, nil
}

// Next returns the next transaction.
func (g *Generator) Next() Labeled {
	isFraud := g.rng.Float64() < g.cfg.FraudRate
	st := &legit
	if isFraud {
		st = &fraud
	}
	var tx transaction.Transaction
	for i, c := range []transaction.Column{transaction.DistanceFromHome, transaction.DistanceFromLastTransaction, transaction.RatioToMedianPurchasePrice} {
		v := math.Exp(st.lnMean[i] + st.lnSD[i]*g.rng.NormFloat64())
		tx.Set(c, math.Min(v, transaction.MaxValue))
	}
	for i, c := range []transaction.Column{transaction.RepeatRetailer, transaction.UsedChip, transaction.UsedPinNumber, transaction.OnlineOrder} {
		v := 0.0
		if g.rng.Float64() < st.p[i] {
			v = 1
		}
		tx.Set(c, v)
	}
	id := g.cfg.IDPrefix + "-" + strconv.Itoa(g.n)
	g.n++
	return Labeled{ID: id, Transaction: tx, Fraud: isFraud}
}

// All yields the next n transactions.
func (g *Generator) All(n int) iter.Seq[Labeled] {
	return func(yield func(Labeled) bool) {
		for range n {
			if !yield(g.Next()) {
				return
			}
		}
	}
}

// Take returns the next n transactions as a slice.
func (g *Generator) Take(n int) []Labeled {
	out := make([]Labeled, 0, n)
	for l := range g.All(n) {
		out = append(out, l)
	}
	return out
}

// AppendJSONLine appends the dataset-like line for l: transaction_id, the
// seven columns and the fraud label (0/1), then a newline.
func AppendJSONLine(b []byte, l Labeled) []byte {
	tx := l.Transaction
	tx.ID = l.ID
	b = tx.AppendJSON(b)
	b = b[:len(b)-1] // reopen the object for the label
	if l.Fraud {
		b = append(b, `,"fraud":1}`...)
	} else {
		b = append(b, `,"fraud":0}`...)
	}
	return append(b, '\n')
}
