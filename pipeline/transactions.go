package pipeline

import "errors"

// generate makes the run's transactions with their ground truth.
// TODO(engineer G): use functions' generator library once it lands.
func generate(cfg Config) ([]Transaction, error) {
	return nil, errors.New("transaction generator library not available yet")
}
