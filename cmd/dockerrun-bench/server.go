package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// server is a cmd/docker-run process started by the benchmark.
type server struct {
	url   string
	token string
	owner string
	pool  int

	cmd    *exec.Cmd
	client *http.Client
	exited chan struct{}
	err    error

	warm, cold atomic.Int64 // successful runs, from the request log

	mu   sync.Mutex
	tail []string // the last log lines, for error messages
}

// buildServer builds cmd/docker-run once.
func (bn *bench) buildServer(ctx context.Context) error {
	bn.logf("building cmd/docker-run")
	bn.server = filepath.Join(bn.tmp, "docker-run")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bn.server, "github.com/dockerrun/dockerrun/cmd/docker-run")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build cmd/docker-run (run the benchmark from inside the module): %v\n%s", err, out)
	}
	return nil
}

// startServer starts docker-run on a free loopback port, with a warm pool
// of pool containers of image if pool > 0, and waits until it listens.
func (bn *bench) startServer(ctx context.Context, name, image string, pool int) (*server, error) {
	var b [16]byte
	rand.Read(b[:])
	s := &server{
		token:  hex.EncodeToString(b[:]),
		owner:  bn.owner(name),
		pool:   pool,
		exited: make(chan struct{}),
		client: &http.Client{
			Transport: &http.Transport{
				MaxIdleConns:        1024,
				MaxIdleConnsPerHost: 1024,
				IdleConnTimeout:     time.Minute,
			},
			Timeout: 2 * time.Minute,
		},
	}
	s.cmd = exec.Command(bn.server)
	s.cmd.Env = []string{
		"PATH=" + os.Getenv("PATH"),
		"API_ACCESS_TOKEN=" + s.token,
		"SERVER_LISTEN_ADDR=127.0.0.1",
		"SERVER_LISTEN_PORT=0",
		"SERVER_INSTANCE_NAME=" + s.owner,
		"SERVER_WORKER_THREADS=" + strconv.Itoa(bn.o.workers),
		"SERVER_QUEUE_SIZE=" + strconv.Itoa(4*bn.o.workers),
		"SERVER_REAP_INTERVAL=0",
		"RUN_MAX_EXECUTION_TIME=10",
		"RUN_MAX_OUTPUT_SIZE=" + strconv.Itoa(floodLimit),
		"RUN_WARM_MAX_AGE=3600", // no renewal in the middle of a cell
		"LOG_FORMAT=json",
		"LOG_LEVEL=info",
	}
	if pool > 0 {
		s.cmd.Env = append(s.cmd.Env, fmt.Sprintf("RUN_WARM_POOL=%s=%d", image, pool))
	}
	for _, k := range []string{"DOCKER_HOST", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH", "DOCKER_API_VERSION", "GOGC", "GOMEMLIMIT"} {
		if v, ok := os.LookupEnv(k); ok {
			s.cmd.Env = append(s.cmd.Env, k+"="+v)
		}
	}
	stderr, err := s.cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start docker-run: %w", err)
	}
	addr := make(chan string, 1)
	go s.readLog(stderr, addr)
	select {
	case a := <-addr:
		s.url = "http://" + a
		return s, nil
	case <-s.exited:
		return nil, fmt.Errorf("docker-run exited before listening: %v\n%s", s.err, s.logTail())
	case <-time.After(30 * time.Second):
		s.stop()
		return nil, fmt.Errorf("docker-run did not listen within 30s\n%s", s.logTail())
	case <-ctx.Done():
		s.stop()
		return nil, ctx.Err()
	}
}

// readLog follows the server's JSON log: it finds the listening address
// and counts successful runs, warm and cold.
func (s *server) readLog(r io.Reader, addr chan<- string) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var rec struct {
			Msg    string `json:"msg"`
			Addr   string `json:"addr"`
			Path   string `json:"path"`
			Status int    `json:"status"`
			Warm   *bool  `json:"warm"`
		}
		line := sc.Bytes()
		json.Unmarshal(line, &rec)
		switch {
		case rec.Msg == "listening":
			addr <- rec.Addr
		case rec.Msg == "request" && rec.Path == "/run" && rec.Status == http.StatusOK && rec.Warm != nil:
			if *rec.Warm {
				s.warm.Add(1)
			} else {
				s.cold.Add(1)
			}
			continue
		}
		s.mu.Lock()
		s.tail = append(s.tail, string(line))
		if len(s.tail) > 20 {
			s.tail = s.tail[1:]
		}
		s.mu.Unlock()
	}
	io.Copy(io.Discard, r)
	s.err = s.cmd.Wait()
	close(s.exited)
}

func (s *server) logTail() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Join(s.tail, "\n")
}

// post sends {"image": image, "payload": payload} to /run.
func (s *server) post(ctx context.Context, image string, payload json.RawMessage) (int, []byte, error) {
	body, err := json.Marshal(map[string]any{"image": image, "payload": payload})
	if err != nil {
		return 0, nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url+"/run", bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("X-Access-Token", s.token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := s.client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// stop sends SIGTERM and waits for the server to exit 0.
func (s *server) stop() error {
	select {
	case <-s.exited:
		return s.err
	default:
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
		if s.err != nil {
			return fmt.Errorf("docker-run: %w\n%s", s.err, s.logTail())
		}
		return nil
	case <-time.After(time.Minute):
		s.cmd.Process.Kill()
		<-s.exited
		return fmt.Errorf("docker-run did not exit within a minute of SIGTERM: killed")
	}
}

// pid is the server's process id.
func (s *server) pid() int { return s.cmd.Process.Pid }

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
