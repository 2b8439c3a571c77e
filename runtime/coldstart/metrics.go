package coldstart

import (
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Phase names, as metric labels and log keys.
const (
	PhaseEvidence = "evidence"
	PhaseAttest   = "attest"
	PhaseFetch    = "fetch"
	PhaseDecrypt  = "decrypt"
	PhaseSession  = "session"
	PhaseTotal    = "total"
)

// Phases are the durations of one cold start. Evidence and Attest stay zero
// on the CDH path, where the guest components attest out of our sight.
type Phases struct {
	Evidence, Attest, Fetch, Decrypt, Session, Total time.Duration
	// KeyAttempts is how many tries the key release took.
	KeyAttempts int
}

func (p Phases) each(f func(name string, d time.Duration)) {
	f(PhaseEvidence, p.Evidence)
	f(PhaseAttest, p.Attest)
	f(PhaseFetch, p.Fetch)
	f(PhaseDecrypt, p.Decrypt)
	f(PhaseSession, p.Session)
	f(PhaseTotal, p.Total)
}

// Metrics are the cold-start series. A nil *Metrics records nothing.
type Metrics struct {
	phase    *prometheus.HistogramVec
	last     *prometheus.GaugeVec
	attempts prometheus.Gauge
	results  *prometheus.CounterVec
}

// NewMetrics registers the cold-start series with reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		phase: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "veil_coldstart_phase_seconds",
			Help:    "Duration of each sealed-model cold-start phase (evidence, attest, fetch, decrypt, session, total).",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 18),
		}, []string{"phase"}),
		last: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "veil_coldstart_last_phase_seconds",
			Help: "Duration of each phase of the latest cold start.",
		}, []string{"phase"}),
		attempts: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "veil_coldstart_key_attempts",
			Help: "Key release attempts the latest cold start needed.",
		}),
		results: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "veil_coldstart_total",
			Help: "Cold starts by result (ok, or the failure class).",
		}, []string{"result"}),
	}
	for _, c := range []prometheus.Collector{m.phase, m.last, m.attempts, m.results} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register cold-start metrics: %w", err)
		}
	}
	return m, nil
}

// observe records one cold start. Phase durations go into the histograms
// only for a successful start: a failed one has phases that never ran.
func (m *Metrics) observe(p Phases, result string) {
	if m == nil {
		return
	}
	if result == resultOK {
		p.each(func(name string, d time.Duration) {
			m.phase.WithLabelValues(name).Observe(d.Seconds())
			m.last.WithLabelValues(name).Set(d.Seconds())
		})
	}
	m.attempts.Set(float64(p.KeyAttempts))
	m.results.WithLabelValues(result).Inc()
}
