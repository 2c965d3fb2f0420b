package metrics_test

import (
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/dockerrun/dockerrun"
	"github.com/dockerrun/dockerrun/metrics"
	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// source is a fixed [metrics.Source].
type source dockerrun.Stats

func (s source) Stats() dockerrun.Stats { return dockerrun.Stats(s) }

func TestMetrics(t *testing.T) {
	t.Parallel()
	m := metrics.New()
	m.Watch(source{Running: 3, Waiting: 2, WarmReady: map[string]int{"py:latest": 1}})
	for _, info := range []dockerrun.RunInfo{
		{Image: "py:latest", Container: true, Warm: true, Duration: 20 * time.Millisecond},
		{Image: "py:latest", Container: true, WarmMiss: true, Queued: true, QueueWait: 2 * time.Millisecond, Duration: 300 * time.Millisecond},
		{Image: "sh:latest", Container: true, Queued: true, QueueWait: 700 * time.Millisecond, Duration: 3 * time.Second, Code: dockerrun.CodeExecutionTime},
		// Images that may not exist are not named.
		{Image: "typo:latest", Queued: true, QueueWait: time.Millisecond, Code: dockerrun.CodeContainerCreate},
		{Image: "evil/../x", Code: dockerrun.CodeImageNotAllowed},
		// A known image keeps its name when a later run fails early.
		{Image: "sh:latest", Queued: true, QueueWait: 30 * time.Second, Code: dockerrun.CodeBusy},
	} {
		m.RunDone(info)
	}
	m.ContainersReaped(2)
	m.ContainersReaped(1)
	m.DockerError("remove")
	m.DockerError("remove")
	m.DockerError("ping")

	want := `
# HELP dockerrun_runs_total Runs that ended, by image and code: "ok", or the stable error code (agent-reported limits included).
# TYPE dockerrun_runs_total counter
dockerrun_runs_total{code="docker.container.create",image="other"} 1
dockerrun_runs_total{code="image.not_allowed",image="other"} 1
dockerrun_runs_total{code="limits.execution_time",image="sh:latest"} 1
dockerrun_runs_total{code="ok",image="py:latest"} 2
dockerrun_runs_total{code="runner.busy",image="sh:latest"} 1
# HELP dockerrun_warm_pool_misses_total Runs of an image with a warm pool that found no warm container ready and ran cold.
# TYPE dockerrun_warm_pool_misses_total counter
dockerrun_warm_pool_misses_total{image="py:latest"} 1
# HELP dockerrun_containers_reaped_total Leftover containers (of a dead instance, or whose removal failed) removed by the reaper.
# TYPE dockerrun_containers_reaped_total counter
dockerrun_containers_reaped_total 3
# HELP dockerrun_docker_errors_total Failed calls to the Docker daemon, by call.
# TYPE dockerrun_docker_errors_total counter
dockerrun_docker_errors_total{op="attach"} 0
dockerrun_docker_errors_total{op="create"} 0
dockerrun_docker_errors_total{op="image_inspect"} 0
dockerrun_docker_errors_total{op="inspect"} 0
dockerrun_docker_errors_total{op="kill"} 0
dockerrun_docker_errors_total{op="list"} 0
dockerrun_docker_errors_total{op="ping"} 1
dockerrun_docker_errors_total{op="remove"} 2
dockerrun_docker_errors_total{op="start"} 0
dockerrun_docker_errors_total{op="version"} 0
# HELP dockerrun_runs_in_flight Runs in progress that are not waiting for a place.
# TYPE dockerrun_runs_in_flight gauge
dockerrun_runs_in_flight 3
# HELP dockerrun_queue_length Runs waiting for a place.
# TYPE dockerrun_queue_length gauge
dockerrun_queue_length 2
# HELP dockerrun_warm_pool_ready Warm containers started and idle, by image.
# TYPE dockerrun_warm_pool_ready gauge
dockerrun_warm_pool_ready{image="py:latest"} 1
# HELP dockerrun_build_info Always 1; the version label is the running build's.
# TYPE dockerrun_build_info gauge
dockerrun_build_info{version="` + dockerrun.Version() + `"} 1
`
	names := []string{"dockerrun_runs_total", "dockerrun_warm_pool_misses_total", "dockerrun_containers_reaped_total",
		"dockerrun_docker_errors_total", "dockerrun_runs_in_flight", "dockerrun_queue_length", "dockerrun_warm_pool_ready", "dockerrun_build_info"}
	if err := testutil.CollectAndCompare(m, strings.NewReader(want), names...); err != nil {
		t.Error(err)
	}

	// Histograms: counts and sums per series.
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(m)
	families, err := reg.Gather()
	if err != nil {
		t.Fatalf("Gather() error: %v", err)
	}
	got := map[string]string{}
	for _, f := range families {
		for _, mt := range f.GetMetric() {
			if h := mt.GetHistogram(); h != nil {
				key := f.GetName()
				for _, l := range mt.GetLabel() {
					key += fmt.Sprintf(" %s=%s", l.GetName(), l.GetValue())
				}
				got[key] = fmt.Sprintf("count %d sum %.3f", h.GetSampleCount(), h.GetSampleSum())
			}
		}
	}
	wantHist := map[string]string{
		"dockerrun_run_duration_seconds image=py:latest warm=true":  "count 1 sum 0.020",
		"dockerrun_run_duration_seconds image=py:latest warm=false": "count 1 sum 0.300",
		"dockerrun_run_duration_seconds image=sh:latest warm=false": "count 1 sum 3.000",
		"dockerrun_queue_wait_seconds":                              "count 4 sum 30.703",
	}
	for k, v := range wantHist {
		if got[k] != v {
			t.Errorf("%s: %q, want %q", k, got[k], v)
		}
	}
	if len(got) != len(wantHist) {
		t.Errorf("histogram series = %v, want %v", got, wantHist)
	}
}

// TestMetricsImageCap checks that at most MaxImages images are named, so a
// daemon with many images cannot make the series grow without bound.
func TestMetricsImageCap(t *testing.T) {
	t.Parallel()
	m := metrics.New()
	for i := range metrics.MaxImages + 10 {
		m.RunDone(dockerrun.RunInfo{Image: fmt.Sprintf("img%d:latest", i), Container: true})
	}
	if n := testutil.CollectAndCount(m, "dockerrun_runs_total"); n != metrics.MaxImages+1 {
		t.Errorf("dockerrun_runs_total has %d series, want %d (MaxImages and %q)", n, metrics.MaxImages+1, metrics.OtherImage)
	}
	if got := runs(t, m, metrics.OtherImage); got != 10 {
		t.Errorf("runs under image=%q = %v, want 10", metrics.OtherImage, got)
	}
}

// runs returns the value of dockerrun_runs_total{image, code="ok"}.
func runs(t *testing.T, m *metrics.Metrics, image string) float64 {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(m)
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != "dockerrun_runs_total" {
			continue
		}
		for _, mt := range f.GetMetric() {
			for _, l := range mt.GetLabel() {
				if l.GetName() == "image" && l.GetValue() == image {
					return mt.GetCounter().GetValue()
				}
			}
		}
	}
	t.Fatalf("no dockerrun_runs_total series with image=%q", image)
	return 0
}

// exported returns the names of the metrics New exports.
func exported() map[string]bool {
	names := map[string]bool{}
	ch := make(chan *prometheus.Desc)
	go func() {
		metrics.New().Describe(ch)
		close(ch)
	}()
	name := regexp.MustCompile(`fqName: "([a-z_]+)"`)
	for d := range ch {
		names[name.FindStringSubmatch(d.String())[1]] = true
	}
	return names
}

// TestOperationsDocListsEveryMetric checks docs/operations.md's table of
// metrics against what New exports, both ways.
func TestOperationsDocListsEveryMetric(t *testing.T) {
	t.Parallel()
	doc, err := os.ReadFile("../docs/operations.md")
	if err != nil {
		t.Fatal(err)
	}
	documented := map[string]bool{}
	for _, m := range regexp.MustCompile("(?m)^\\| `(dockerrun_[a-z_]+)` \\|").FindAllStringSubmatch(string(doc), -1) {
		documented[m[1]] = true
	}
	if diff := cmp.Diff(exported(), documented); diff != "" {
		t.Errorf("metrics in docs/operations.md's table mismatch (-exported +documented):\n%s", diff)
	}
}

// TestAlertRulesNameExportedMetrics checks that every dockerrun_* series
// that deploy/alerts.yaml names is one New exports.
func TestAlertRulesNameExportedMetrics(t *testing.T) {
	t.Parallel()
	rules, err := os.ReadFile("../deploy/alerts.yaml")
	if err != nil {
		t.Fatal(err)
	}
	names := exported()
	for _, m := range regexp.MustCompile(`dockerrun_[a-z_]+`).FindAllString(string(rules), -1) {
		if !names[strings.TrimSuffix(m, "_bucket")] {
			t.Errorf("deploy/alerts.yaml names %s, which the server does not export", m)
		}
	}
}
