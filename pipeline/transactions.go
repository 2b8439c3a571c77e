package pipeline

import "errors"

// GenerateTransactions makes count transactions from seed with their ground
// truth; the same arguments always give the same transactions, which is
// how a test re-creates a run's rows to score them directly.
// TODO(engineer G): use functions' generator library once it lands.
func GenerateTransactions(count int, seed int64, fraudRate float64) ([]Transaction, error) {
	return nil, errors.New("transaction generator library not available yet")
}
