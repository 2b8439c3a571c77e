package pipeline

import (
	"math"
	"slices"
	"time"
)

// Sent is one transaction as the generator sent it: its ground truth and
// the moment its event left, which starts the end-to-end latency clock.
type Sent struct {
	ID    string
	Fraud bool // the generator's ground-truth label
	At    time.Time
	Bytes int // data bytes of the transaction event
	// Attempts it took to deliver (more than 1 after 429/5xx answers).
	Attempts int
}

// Percentile is the nearest-rank percentile p (0 < p ≤ 100) of sorted
// values; 0 for none. Nearest rank returns an observed value, so a p99 is
// always a latency some transaction actually had.
func Percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 || p <= 0 {
		return 0
	}
	if p >= 100 {
		return sorted[len(sorted)-1]
	}
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	if rank < 1 {
		rank = 1
	}
	return sorted[rank-1]
}

// Confusion counts flagged-vs-true outcomes.
type Confusion struct {
	TP int `json:"true_positives"`
	FP int `json:"false_positives"`
	TN int `json:"true_negatives"`
	FN int `json:"false_negatives"`
}

// Add counts one scored transaction.
func (c *Confusion) Add(flagged, truth bool) {
	switch {
	case flagged && truth:
		c.TP++
	case flagged && !truth:
		c.FP++
	case !flagged && truth:
		c.FN++
	default:
		c.TN++
	}
}

// Precision is TP/(TP+FP); ok is false when nothing was flagged.
func (c Confusion) Precision() (v float64, ok bool) { return ratio(c.TP, c.TP+c.FP) }

// Recall is TP/(TP+FN); ok is false when there was no true fraud.
func (c Confusion) Recall() (v float64, ok bool) { return ratio(c.TP, c.TP+c.FN) }

// Accuracy is (TP+TN)/all; ok is false when nothing was counted.
func (c Confusion) Accuracy() (v float64, ok bool) {
	return ratio(c.TP+c.TN, c.TP+c.TN+c.FP+c.FN)
}

func ratio(num, den int) (float64, bool) {
	if den == 0 {
		return 0, false
	}
	return float64(num) / float64(den), true
}

// LatencyPoint is one transaction's end-to-end latency, placed at its send
// time relative to the first send (for the latency-over-time plot).
type LatencyPoint struct {
	SinceStart time.Duration
	Latency    time.Duration
}

// Outcome joins what was sent with what arrived.
type Outcome struct {
	Sent       int
	Scored     int // distinct sent transactions with a result
	Missing    int // sent, no result
	Unexpected int // results for ids that were never sent
	Duplicates int
	Retries    int // extra delivery attempts (429/5xx answers, connection errors)
	Flagged    int
	TrueFraud  int // among sent
	Confusion  Confusion

	Latencies []time.Duration // sorted
	Points    []LatencyPoint  // in send order
	// Scores by true class, for the histogram.
	LegitScores, FraudScores []float64

	FirstSend, LastArrival time.Time
	TransactionBytes       int64
}

// Join matches results to sent transactions by transaction id. first holds
// the first result per id (later copies are duplicates, counted separately).
func Join(sent []Sent, first map[string]Arrival, duplicates int) Outcome {
	o := Outcome{Sent: len(sent), Duplicates: duplicates}
	known := make(map[string]struct{}, len(sent))
	for _, s := range sent {
		known[s.ID] = struct{}{}
		o.TransactionBytes += int64(s.Bytes)
		o.Retries += max(s.Attempts-1, 0)
		if s.Fraud {
			o.TrueFraud++
		}
		if o.FirstSend.IsZero() || s.At.Before(o.FirstSend) {
			o.FirstSend = s.At
		}
	}
	for _, s := range sent {
		a, ok := first[s.ID]
		if !ok {
			o.Missing++
			continue
		}
		o.Scored++
		if a.Fraud {
			o.Flagged++
		}
		o.Confusion.Add(a.Fraud, s.Fraud)
		if s.Fraud {
			o.FraudScores = append(o.FraudScores, a.Score)
		} else {
			o.LegitScores = append(o.LegitScores, a.Score)
		}
		lat := a.At.Sub(s.At)
		o.Latencies = append(o.Latencies, lat)
		o.Points = append(o.Points, LatencyPoint{SinceStart: s.At.Sub(o.FirstSend), Latency: lat})
		if a.At.After(o.LastArrival) {
			o.LastArrival = a.At
		}
	}
	for id := range first {
		if _, ok := known[id]; !ok {
			o.Unexpected++
		}
	}
	slices.Sort(o.Latencies)
	return o
}

// Throughput is scored transactions per second from the first send to the
// last result; 0 when undefined.
func (o Outcome) Throughput() float64 {
	d := o.LastArrival.Sub(o.FirstSend)
	if o.Scored == 0 || d <= 0 {
		return 0
	}
	return float64(o.Scored) / d.Seconds()
}
