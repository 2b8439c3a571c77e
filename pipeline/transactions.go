package pipeline

import (
	"fmt"

	"github.com/veil-ai/veil/functions/gen"
)

// GenerateTransactions makes count transactions from seed with their ground
// truth, using the functions' generator (DATA.md's per-class
// distributions). The same arguments always give the same transactions,
// which is how a test re-creates a run's rows to score them directly.
func GenerateTransactions(count int, seed uint64, fraudRate float64) ([]Transaction, error) {
	g, err := gen.NewGenerator(gen.Config{Seed: seed, FraudRate: fraudRate})
	if err != nil {
		return nil, fmt.Errorf("transaction generator: %w", err)
	}
	out := make([]Transaction, 0, count)
	for l := range g.All(count) {
		tx := l.Transaction
		tx.ID = l.ID
		out = append(out, Transaction{ID: l.ID, Fraud: l.Fraud, Data: tx.AppendJSON(nil)})
	}
	return out, nil
}
