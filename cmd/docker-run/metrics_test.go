package main

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/google/go-cmp/cmp"

	"github.com/dockerrun/dockerrun"
	"github.com/dockerrun/dockerrun/httpapi"
	"github.com/dockerrun/dockerrun/internal/testenv"
)

// scrape returns the samples of GET http://addr/metrics, keyed by the
// series as the exposition writes it, e.g. `dockerrun_runs_total{code="ok",image="x:latest"}`.
func scrape(t *testing.T, addr string) map[string]float64 {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: status %d", resp.StatusCode)
	}
	samples := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("GET /metrics: line %q: %v", line, err)
		}
		samples[line[:i]] = v
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	return samples
}

// waitSample polls the metrics until series has the value want.
func waitSample(t *testing.T, addr, series string, want float64) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		got, ok := scrape(t, addr)[series]
		if ok && got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s = %v (present: %v), want %v within 30s", series, got, ok, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestServerMetrics drives a server through every kind of run and checks
// the value of every metric the issue lists, and /readyz on the way.
func TestServerMetrics(t *testing.T) {
	images := testenv.LanguageImages(t, "python", "bash")
	python, bash := images[0], images[1]
	const missing = "nosuch/image:latest"
	metricsAddr := testenv.FreeAddr(t)
	// Two places: the bash pool holds one, so one cold run fills the server,
	// and without a queue it is then not ready.
	s := testenv.StartServer(t,
		"SERVER_METRICS_ADDR="+metricsAddr,
		"SERVER_WORKER_THREADS=2",
		"SERVER_QUEUE_SIZE=0",
		"SERVER_REAP_INTERVAL=1",
		"RUN_MAX_EXECUTION_TIME=2",
		"RUN_WARM_POOL="+bash+"=1",
		"RUN_ALLOWED_IMAGES="+python+" "+bash+" "+missing,
	)
	ctx := context.Background()
	pyCode := func(code string) map[string]any {
		return map[string]any{"language": "python", "files": []map[string]string{{"name": "main.py", "content": code}}}
	}
	// ready waits until the server can take a run: a used container's
	// removal holds its place for a moment.
	ready := func() {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			status, body, err := s.Do(ctx, http.MethodGet, "/readyz", nil)
			if err == nil && status == http.StatusOK {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("GET /readyz: %d %s %v; want 200 within 30s", status, body, err)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	run := func(image string, payload any, wantStatus int) {
		t.Helper()
		ready()
		status, body, err := s.Run(ctx, image, payload)
		if err != nil || status != wantStatus {
			t.Fatalf("POST /run %s: %d %s %v; want status %d", image, status, body, err, wantStatus)
		}
	}
	poolReady := fmt.Sprintf("dockerrun_warm_pool_ready{image=%q}", bash)
	waitSample(t, metricsAddr, poolReady, 1)

	run(bash, map[string]any{"language": "bash", "files": []map[string]string{{"name": "main.sh", "content": "echo hi"}}}, http.StatusOK)
	run(python, pyCode("print(42)"), http.StatusOK)

	// A run that the agent stops at its limit holds the last place.
	waitSample(t, metricsAddr, poolReady, 1)
	ready()
	slow := make(chan error, 1)
	go func() {
		status, body, err := s.Run(ctx, python, pyCode("import time\ntime.sleep(60)"))
		if err == nil && (status != http.StatusOK || !strings.Contains(string(body), "Execution time limit exceeded")) {
			err = fmt.Errorf("%d %s", status, body)
		}
		slow <- err
	}()
	waitSample(t, metricsAddr, "dockerrun_runs_in_flight", 1)
	status, body, _ := s.Do(ctx, http.MethodGet, "/readyz", nil)
	if got := errorOf(t, answer{status, body}); got != (apiError{http.StatusServiceUnavailable, httpapi.CodeNotReady}) || !strings.Contains(string(body), string(dockerrun.CodeBusy)) {
		t.Errorf("GET /readyz with every place taken = %+v %s, want 503 %s for %s", got, body, httpapi.CodeNotReady, dockerrun.CodeBusy)
	}
	if err := <-slow; err != nil {
		t.Fatalf("POST /run of a program past the limit: want 200 with the agent's limit error, got %v", err)
	}

	run(missing, pyCode("print(1)"), http.StatusBadRequest)
	run("someone/else", pyCode("print(1)"), http.StatusBadRequest)

	// A container of this owner left by a dead instance is reaped.
	leftover, err := testenv.Docker(t).ContainerCreate(ctx, &container.Config{
		Image:  python,
		Labels: map[string]string{dockerrun.LabelOwner: s.Owner, dockerrun.LabelInstance: "dead"},
	}, nil, nil, nil, "")
	if err != nil {
		t.Fatalf("create a leftover container: %v", err)
	}
	t.Cleanup(func() {
		testenv.Docker(t).ContainerRemove(context.Background(), leftover.ID, container.RemoveOptions{Force: true})
	})
	waitSample(t, metricsAddr, "dockerrun_containers_reaped_total", 1)
	waitSample(t, metricsAddr, "dockerrun_runs_in_flight", 0)

	got := scrape(t, metricsAddr)
	want := map[string]float64{
		fmt.Sprintf(`dockerrun_runs_total{code="ok",image=%q}`, bash):                      1,
		fmt.Sprintf(`dockerrun_runs_total{code="ok",image=%q}`, python):                    1,
		fmt.Sprintf(`dockerrun_runs_total{code="limits.execution_time",image=%q}`, python): 1,
		`dockerrun_runs_total{code="docker.container.create",image="other"}`:               1,
		`dockerrun_runs_total{code="image.not_allowed",image="other"}`:                     1,
		fmt.Sprintf(`dockerrun_run_duration_seconds_count{image=%q,warm="true"}`, bash):    1,
		fmt.Sprintf(`dockerrun_run_duration_seconds_count{image=%q,warm="false"}`, python): 2,
		`dockerrun_queue_wait_seconds_count`:                                               3,
		fmt.Sprintf(`dockerrun_warm_pool_misses_total{image=%q}`, bash):                    0,
		`dockerrun_containers_reaped_total`:                                                1,
		`dockerrun_queue_length`:                                                           0,
		`dockerrun_runs_in_flight`:                                                         0,
	}
	picked := map[string]float64{}
	for k := range want {
		if v, ok := got[k]; ok {
			picked[k] = v
		}
	}
	if diff := cmp.Diff(want, picked); diff != "" {
		t.Errorf("metrics mismatch (-want +got):\n%s", diff)
	}
	var runs float64
	builds := 0
	for k, v := range got {
		// The daemon never failed: a missing image is not its error.
		if strings.HasPrefix(k, "dockerrun_docker_errors_total{") && v != 0 {
			t.Errorf("%s = %v, want 0", k, v)
		}
		if strings.HasPrefix(k, "dockerrun_runs_total{") {
			runs += v
		}
		if strings.HasPrefix(k, `dockerrun_build_info{version="`) && !strings.HasPrefix(k, `dockerrun_build_info{version=""`) && v == 1 {
			builds++
		}
	}
	if builds != 1 {
		t.Errorf("want one dockerrun_build_info series with a version and the value 1; got %v", got)
	}
	if runs != 5 {
		t.Errorf("dockerrun_runs_total sums to %v over every series, want 5", runs)
	}
	// The slow run took at least the 2s limit.
	if sum := got[fmt.Sprintf(`dockerrun_run_duration_seconds_sum{image=%q,warm="false"}`, python)]; sum < 2 {
		t.Errorf("python's run duration sums to %vs, want at least the 2s limit", sum)
	}
	for _, name := range []string{"go_goroutines", "process_resident_memory_bytes", "process_cpu_seconds_total"} {
		if _, ok := got[name]; !ok {
			t.Errorf("%s: missing: the Go and process collectors must be registered", name)
		}
	}
}
