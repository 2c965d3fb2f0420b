package metrics_test

import (
	"context"
	"fmt"
	"log"
	"net/http/httptest"
	"strings"

	"github.com/dockerrun/dockerrun"
	"github.com/dockerrun/dockerrun/metrics"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// A library user puts a Runner's metrics into a registry of their own and
// serves it wherever they like.
func Example() {
	m := metrics.New()
	r, err := dockerrun.New(dockerrun.WithObserver(m), dockerrun.WithAllowedImages("dockerrun/python:latest"))
	if err != nil {
		log.Fatal(err)
	}
	defer r.Close(context.Background())
	m.Watch(r) // the gauges read r.Stats() at each scrape

	reg := prometheus.NewRegistry()
	reg.MustRegister(m)
	handler := promhttp.HandlerFor(reg, promhttp.HandlerOpts{}) // serve it at /metrics

	// A run refused before any container exists: no daemon needed.
	r.Run(context.Background(), "someone/else:latest", map[string]any{})

	rec := httptest.NewRecorder()
	handler.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	for line := range strings.Lines(rec.Body.String()) {
		if strings.HasPrefix(line, "dockerrun_runs_total") || strings.HasPrefix(line, "dockerrun_queue_length") {
			fmt.Print(line)
		}
	}
	// Output:
	// dockerrun_queue_length 0
	// dockerrun_runs_total{code="image.not_allowed",image="other"} 1
}
