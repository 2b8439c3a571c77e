package server

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// metrics are the server's Prometheus series, in a registry of its own.
type metrics struct {
	registry *prometheus.Registry
	predict  *prometheus.HistogramVec
	requests *prometheus.CounterVec
	errors   *prometheus.CounterVec
	inFlight *prometheus.GaugeVec
}

func newMetrics(registry *prometheus.Registry) *metrics {
	if registry == nil {
		registry = prometheus.NewRegistry()
	}
	m := &metrics{
		registry: registry,
		// KServe's name and label, so existing dashboards work.
		predict: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "request_predict_seconds",
			Help:    "Time spent running the model per inference request.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"model_name"}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "veil_requests_total",
			Help: "Requests handled, by protocol (rest, grpc) and status code.",
		}, []string{"protocol", "code"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "veil_request_errors_total",
			Help: "Requests that failed, by protocol (rest, grpc) and status code.",
		}, []string{"protocol", "code"}),
		inFlight: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "veil_requests_in_flight",
			Help: "Requests being handled now, by protocol.",
		}, []string{"protocol"}),
	}
	m.registry.MustRegister(m.predict, m.requests, m.errors, m.inFlight,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}
