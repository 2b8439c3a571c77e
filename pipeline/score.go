package pipeline

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"
)

// score is steps 4 and 5: send, wait for every result, summarize.
func (r *run) score(ctx context.Context, batcherURL, batcherMetrics string) error {
	sent, err := r.send(ctx, batcherURL)
	if err != nil {
		return err
	}
	wctx, cancel := context.WithTimeout(ctx, r.cfg.ResultTimeout)
	defer cancel()
	// Missing results still get a summary (it shows how many), then fail.
	var missing error
	if err := r.sink.WaitDistinct(wctx, len(sent)); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("results: %w", ctx.Err())
		}
		missing = fmt.Errorf("results: %w", err)
	}
	r.collect(ctx, sent, batcherMetrics)
	r.printf("[5/5] %d results arrived at the sink\n\n", r.sink.Counts().Results)
	if err := r.writeOutputs(); err != nil {
		return err
	}
	return missing
}

// send is step 4: generate the transactions and send them to the batcher.
func (r *run) send(ctx context.Context, batcherURL string) ([]Sent, error) {
	txs, err := generate(r.cfg.Count, r.cfg.Seed, r.cfg.FraudRate)
	if err != nil {
		return nil, err
	}
	rateText := "as fast as the batcher answers"
	if r.cfg.Rate > 0 {
		rateText = fmt.Sprintf("at %g/s", r.cfg.Rate)
	}
	r.printf("[4/5] sending %d transactions (seed %d, %.1f %% fraud) as CloudEvents %s, %d in flight\n",
		len(txs), r.cfg.Seed, r.cfg.FraudRate*100, rateText, r.cfg.Senders)
	progress := NewProgress(r.out, "sent", len(txs), r.cfg.Terminal)
	sent, err := sendAll(ctx, LoadConfig{
		Target: batcherURL, Source: "veil-run/generator", Rate: r.cfg.Rate,
		Concurrency: r.cfg.Senders, Retries: 9, Progress: progress,
	}, txs)
	progress.Finish()
	if err != nil {
		return nil, fmt.Errorf("sending transactions: %w", err)
	}
	return sent, nil
}

// collect joins what was sent with what arrived into the result and its
// summary, adding the batcher's own figures.
func (r *run) collect(ctx context.Context, sent []Sent, batcherMetrics string) {
	s := &r.result.Summary
	first := r.sink.First()
	counts := r.sink.Counts()
	o := Join(sent, first, counts.Duplicates)
	cold, endpoints := s.ColdStart, s.Endpoints
	*s = summarize(o, counts.ResultBytes)
	s.ColdStart, s.Endpoints = cold, endpoints
	s.Settings = Settings{Count: r.cfg.Count, Rate: r.cfg.Rate, Seed: r.cfg.Seed, FraudRate: r.cfg.FraudRate,
		MaxBatchSize: r.cfg.MaxBatchSize, MaxLatency: r.cfg.MaxLatency.String(), Protocol: r.cfg.Protocol,
		TEE: "sample (DEVELOPMENT ONLY, insecure)"}
	for _, a := range first { // every result names the same model
		s.Model, s.ModelVersion = a.Model, a.ModelVersion
		break
	}
	if err := r.batcherFigures(ctx, batcherMetrics, s); err != nil {
		slog.Warn("batcher metrics unavailable", "err", err)
	}
	r.result.Sent, r.result.First, r.result.Outcome = sent, first, o
}

// writeOutputs writes the report, prints the table and writes the
// machine-readable files that were asked for.
func (r *run) writeOutputs() error {
	s, o := &r.result.Summary, r.result.Outcome
	if r.cfg.ReportPath != "" {
		abs, err := filepath.Abs(r.cfg.ReportPath)
		if err != nil {
			return fmt.Errorf("report path: %w", err)
		}
		s.ReportPath = abs
		if err := WriteReport(abs, ReportData{Summary: *s, Points: o.Points, LegitScores: o.LegitScores,
			FraudScores: o.FraudScores, Threshold: fraudThreshold, Generated: time.Now()}); err != nil {
			return err
		}
	}
	if err := s.PrintTable(r.out); err != nil {
		return fmt.Errorf("print summary: %w", err)
	}
	if r.cfg.SummaryJSON != "" {
		if err := s.WriteJSON(r.cfg.SummaryJSON); err != nil {
			return err
		}
	}
	if r.cfg.ResultsPath != "" {
		if err := writeResults(r.cfg.ResultsPath, r.result.Sent, r.result.First); err != nil {
			return err
		}
	}
	return nil
}

// resultLine is one line of --results_jsonl: no transaction features,
// only the id, the ground truth and what came back.
type resultLine struct {
	TransactionID string  `json:"transaction_id"`
	TrueFraud     bool    `json:"true_fraud"`
	Scored        bool    `json:"scored"`
	Score         float64 `json:"score"`
	Fraud         bool    `json:"fraud"`
	LatencyMs     float64 `json:"latency_ms"`
}

func writeResults(path string, sent []Sent, first map[string]Arrival) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("results file: %w", err)
	}
	enc := json.NewEncoder(f)
	for _, s := range sent {
		l := resultLine{TransactionID: s.ID, TrueFraud: s.Fraud}
		if a, ok := first[s.ID]; ok {
			l.Scored, l.Score, l.Fraud, l.LatencyMs = true, a.Score, a.Fraud, millis(a.At.Sub(s.At))
		}
		if err := enc.Encode(l); err != nil {
			f.Close()
			return fmt.Errorf("write results %s: %w", path, err)
		}
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write results %s: %w", path, err)
	}
	return nil
}
