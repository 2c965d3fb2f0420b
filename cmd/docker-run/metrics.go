package main

import (
	"log/slog"
	"net/http"
	"time"

	"github.com/dockerrun/dockerrun/metrics"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metricsHandler serves GET /metrics from a registry of its own: m, and the
// Go runtime's and the process's standard collectors.
func metricsHandler(m *metrics.Metrics, log *slog.Logger) http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		m,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		Timeout:           10 * time.Second,
		EnableOpenMetrics: true,
	}))
	return mux
}
