package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/dockerrun/dockerrun/internal/serverproc"
)

// server is a cmd/docker-run process started by the benchmark.
type server struct {
	*serverproc.Proc
	owner  string
	pool   int
	client *http.Client
}

// buildServer builds cmd/docker-run once.
func (bn *bench) buildServer(ctx context.Context) (err error) {
	bn.logf("building cmd/docker-run")
	bn.server, err = serverproc.Build(ctx, bn.tmp)
	return err
}

// startServer starts docker-run on a free loopback port, with a warm pool
// of pool containers of image if pool > 0, and waits until it listens.
func (bn *bench) startServer(ctx context.Context, name string, img *benchImage, pool int) (*server, error) {
	s := &server{
		owner: bn.owner(name),
		pool:  pool,
		client: &http.Client{
			Transport: &http.Transport{
				MaxIdleConns:        1024,
				MaxIdleConnsPerHost: 1024,
				IdleConnTimeout:     time.Minute,
			},
			Timeout: 2 * time.Minute,
		},
	}
	env := []string{
		"SERVER_INSTANCE_NAME=" + s.owner,
		"SERVER_WORKER_THREADS=" + strconv.Itoa(bn.o.workers),
		"SERVER_QUEUE_SIZE=" + strconv.Itoa(4*bn.o.workers),
		"SERVER_REAP_INTERVAL=0",
		"RUN_MAX_EXECUTION_TIME=10",
		"RUN_MAX_OUTPUT_SIZE=" + strconv.Itoa(floodLimit),
		"RUN_WARM_MAX_AGE=3600", // no renewal in the middle of a cell
		"LOG_LEVEL=info",
		"DOCKER_CONTAINER_RUNTIME=" + img.runtime,
	}
	if pool > 0 {
		env = append(env, fmt.Sprintf("RUN_WARM_POOL=%s=%d", img.ref, pool))
	}
	p, err := serverproc.Start(ctx, bn.server, serverproc.Options{Env: env, KeepLines: 20})
	if err != nil {
		return nil, err
	}
	s.Proc = p
	return s, nil
}

// post sends {"image": image, "payload": payload} to /run.
func (s *server) post(ctx context.Context, image string, payload json.RawMessage) (int, []byte, error) {
	return s.Run(ctx, s.client, image, payload)
}

// stop sends SIGTERM and waits for the server to exit 0.
func (s *server) stop() error {
	if err := s.Stop(time.Minute); err != nil {
		return fmt.Errorf("docker-run: %w\n%s", err, s.Logs())
	}
	return nil
}

// resetPeakRSS resets the process's peak RSS (VmHWM) to its current RSS.
func resetPeakRSS(pid int) error {
	return os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0)
}

// procStatus returns a field of /proc/PID/status in bytes (VmHWM, VmRSS).
func procStatus(pid int, field string) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("/proc/%d/status has no %s", pid, field)
}
