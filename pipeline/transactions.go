package pipeline

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/veil-ai/veil/functions/gen"
)

// Transaction is one generated transaction: the event data the generator
// sends (the dataset's columns as JSON; the event id is the transaction
// id) and its ground truth.
type Transaction struct {
	ID    string
	Fraud bool
	Data  []byte
}

// generate draws count labeled transactions from the functions'
// generator (DATA.md's per-class distributions).
func generate(count int, seed uint64, fraudRate float64) ([]gen.Labeled, error) {
	g, err := gen.NewGenerator(gen.Config{Seed: seed, FraudRate: fraudRate})
	if err != nil {
		return nil, fmt.Errorf("transaction generator: %w", err)
	}
	return g.Take(count), nil
}

// eventData is a transaction's event data as gen.Send writes it in binary
// mode, which is what the egress ratio counts.
func eventData(l gen.Labeled) []byte { return l.Transaction.AppendJSON(nil) }

// GenerateTransactions makes the transactions a run with these arguments
// sends. The same arguments always give the same transactions, which is
// how a test re-creates a run's rows to score them directly.
func GenerateTransactions(count int, seed uint64, fraudRate float64) ([]Transaction, error) {
	ls, err := generate(count, seed, fraudRate)
	if err != nil {
		return nil, err
	}
	out := make([]Transaction, len(ls))
	for i, l := range ls {
		out[i] = Transaction{ID: l.ID, Fraud: l.Fraud, Data: eventData(l)}
	}
	return out, nil
}

// LoadConfig says how to send the transactions.
type LoadConfig struct {
	Target      string  // the batcher's URL
	Source      string  // CloudEvents source attribute
	Rate        float64 // events per second; 0 = as fast as Concurrency allows
	Concurrency int     // events in flight; the batcher answers each only once scored
	Retries     int     // per event, for 429/5xx answers and connection errors
	Progress    *Progress
}

// sendAll sends ls as binary-mode CloudEvents with the functions'
// generator and returns, per transaction and in generation order, when
// its first attempt left and how many attempts it took. It fails if any
// event is still unacknowledged after its retries.
func sendAll(ctx context.Context, cfg LoadConfig, ls []gen.Labeled) ([]Sent, error) {
	index := make(map[string]int, len(ls))
	for i, l := range ls {
		index[l.ID] = i
	}
	sent := make([]Sent, len(ls))
	var mu sync.Mutex
	onAck := func(a gen.Ack) {
		if a.Redelivery || a.Err != nil {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		for _, l := range a.Events {
			sent[index[l.ID]] = Sent{ID: l.ID, Fraud: l.Fraud, At: a.FirstSentAt, Bytes: len(eventData(l)), Attempts: a.Attempts}
		}
		cfg.Progress.Add(len(a.Events))
	}
	_, err := gen.Send(ctx, gen.SendConfig{
		URL: cfg.Target, Mode: gen.ModeBinary, Rate: cfg.Rate, Concurrency: cfg.Concurrency,
		Source: cfg.Source, Retries: cfg.Retries, Total: len(ls),
		Hooks: gen.Hooks{OnAck: onAck},
	}, slices.Values(ls))
	if err != nil {
		return nil, err
	}
	mu.Lock()
	defer mu.Unlock()
	for i, s := range sent {
		if s.ID == "" {
			return nil, fmt.Errorf("transaction %s was never acknowledged", ls[i].ID)
		}
	}
	return sent, nil
}
