package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/veil-ai/veil/functions/gen"
)

// runGen generates synthetic transactions (functions/gen) and either
// sends them as CloudEvents or writes them as JSON lines.
func runGen(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("veil gen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		url, mode, out, replies, source, idPrefix string
		count, batchEvents, concurrency, retries  int
		rate, fraudRate, redeliver                float64
		seed                                      uint64
		timeout                                   time.Duration
		quiet                                     bool
	)
	fs.StringVar(&url, "url", "", "CloudEvents endpoint to send to (the batcher)")
	fs.IntVar(&count, "count", 1000, "number of transactions")
	fs.Float64Var(&rate, "rate", 0, "target events per second (0: as fast as possible)")
	fs.StringVar(&mode, "mode", "binary", "binary (one event per request) or batched (application/cloudevents-batch+json)")
	fs.IntVar(&batchEvents, "batch_events", 100, "events per request in batched mode")
	fs.Uint64Var(&seed, "seed", 1, "random seed: the same seed gives the same transactions and ids")
	fs.Float64Var(&fraudRate, "fraud_rate", gen.DefaultFraudRate, "share of fraudulent transactions")
	fs.StringVar(&idPrefix, "id_prefix", "", "event id prefix (default tx-<seed>)")
	fs.StringVar(&source, "source", "urn:veil:gen", "CloudEvents source")
	fs.IntVar(&concurrency, "concurrency", 16, "requests in flight")
	fs.IntVar(&retries, "retries", 20, "retries per request on 5xx, 429 and connection errors (exponential backoff, same event ids)")
	fs.DurationVar(&timeout, "timeout", 30*time.Second, "timeout of one attempt")
	fs.Float64Var(&redeliver, "redeliver", 0, "share of requests delivered a second time after their answer, as an at-least-once broker may")
	fs.StringVar(&out, "out", "", "write the transactions as JSON lines (with their fraud label) to this file ('-': stdout) instead of sending")
	fs.StringVar(&replies, "replies", "", "write every received score as a JSON line to this file")
	fs.BoolVar(&quiet, "quiet", false, "no progress bar")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if count < 0 {
		return errors.New("--count must not be negative")
	}
	g, err := gen.NewGenerator(gen.Config{Seed: seed, FraudRate: fraudRate, IDPrefix: idPrefix})
	if err != nil {
		return err
	}
	if out != "" {
		return writeLines(out, stdout, g, count)
	}
	if url == "" {
		return errors.New("--url or --out is required")
	}
	m, err := gen.ParseMode(mode)
	if err != nil {
		return err
	}
	cfg := gen.SendConfig{URL: url, Mode: m, BatchEvents: batchEvents, Rate: rate, Concurrency: concurrency,
		Source: source, Retries: retries, Timeout: timeout, Redeliver: redeliver, Seed: seed, Total: count}
	if !quiet {
		cfg.Progress = stderr
	}
	var rw *replyWriter
	if replies != "" {
		f, err := os.Create(replies)
		if err != nil {
			return fmt.Errorf("--replies: %w", err)
		}
		defer f.Close()
		rw = &replyWriter{w: bufio.NewWriter(f)}
		cfg.Hooks.OnAck = rw.onAck
	}
	st, sendErr := gen.Send(ctx, cfg, g.All(count))
	if rw != nil {
		if err := rw.close(); err != nil && sendErr == nil {
			sendErr = fmt.Errorf("--replies: %w", err)
		}
	}
	egress := 0.0
	if st.BytesSent > 0 {
		egress = float64(st.BytesRecv) / float64(st.BytesSent)
	}
	fmt.Fprintf(stderr, "veil gen: %d events in %v: %d acknowledged, %d rejected, %d failed, %d retries, %d redelivered; %d bytes sent, %d received (ratio %.3f)\n",
		st.Events, st.Elapsed.Round(time.Millisecond), st.Acked, st.Rejected, st.Failed, st.Retries, st.Redelivered, st.BytesSent, st.BytesRecv, egress)
	return sendErr
}

func writeLines(path string, stdout io.Writer, g *gen.Generator, count int) error {
	w := stdout
	if path != "-" {
		f, err := os.Create(path)
		if err != nil {
			return fmt.Errorf("--out: %w", err)
		}
		defer f.Close()
		w = f
	}
	bw := bufio.NewWriter(w)
	var line []byte
	for l := range g.All(count) {
		line = gen.AppendJSONLine(line[:0], l)
		if _, err := bw.Write(line); err != nil {
			return fmt.Errorf("--out: %w", err)
		}
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("--out: %w", err)
	}
	return nil
}

// replyWriter writes each score of each 2xx reply as a JSON line.
type replyWriter struct {
	mu  sync.Mutex
	w   *bufio.Writer
	err error
}

func (r *replyWriter) onAck(a gen.Ack) {
	if a.Status < 200 || a.Status > 299 {
		return
	}
	results, _, err := gen.ParseReply(a.Header, a.Body)
	r.mu.Lock()
	defer r.mu.Unlock()
	if err != nil {
		r.err = errors.Join(r.err, err)
		return
	}
	for _, res := range results {
		b, err := json.Marshal(res)
		if err != nil {
			r.err = errors.Join(r.err, err)
			return
		}
		r.w.Write(b)
		r.w.WriteByte('\n')
	}
}

func (r *replyWriter) close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return errors.Join(r.err, r.w.Flush())
}
