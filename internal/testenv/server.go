package testenv

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
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Server is a docker-run server process started by a test.
type Server struct {
	// URL is the server's base URL, e.g. http://127.0.0.1:40123.
	URL string
	// Token is its access token.
	Token string
	// Owner is its SERVER_INSTANCE_NAME, the owner label of its containers.
	Owner string

	cmd    *exec.Cmd
	mu     sync.Mutex
	logs   bytes.Buffer
	exited chan struct{}
	err    error
}

var (
	serverOnce sync.Once
	serverBin  string
	serverErr  error
)

// ServerBinary builds cmd/docker-run once per test binary and returns its
// path, for tests that run the server themselves (for example to watch it
// fail at start-up). It needs no Docker engine.
func ServerBinary(t testing.TB) string {
	t.Helper()
	return serverBinary(t)
}

// serverBinary builds cmd/docker-run once per test binary.
func serverBinary(t testing.TB) string {
	t.Helper()
	serverOnce.Do(func() {
		dir, err := os.MkdirTemp("", "dockerrun-server")
		if err != nil {
			serverErr = err
			return
		}
		serverBin = filepath.Join(dir, "docker-run")
		cmd := exec.Command("go", "build", "-o", serverBin, "github.com/dockerrun/dockerrun/cmd/docker-run")
		if out, err := cmd.CombinedOutput(); err != nil {
			serverErr = fmt.Errorf("go build docker-run: %v\n%s", err, out)
		}
	})
	if serverErr != nil {
		t.Fatal(serverErr)
	}
	return serverBin
}

// StartServer starts cmd/docker-run on a free loopback port with env added
// to a minimal environment (API_ACCESS_TOKEN, SERVER_LISTEN_PORT=0, a
// unique SERVER_INSTANCE_NAME, text logs). It waits until the server
// listens. At the end of the test it stops the server with SIGTERM, fails
// the test unless it exits 0, and checks that no container of its owner is
// left.
func StartServer(t testing.TB, env ...string) *Server {
	t.Helper()
	Docker(t)
	bin := serverBinary(t)
	s := &Server{
		Token:  "test-token-" + randomHex(8),
		Owner:  "test-" + randomHex(6),
		exited: make(chan struct{}),
	}
	s.cmd = exec.Command(bin)
	s.cmd.Env = append([]string{
		"PATH=" + os.Getenv("PATH"),
		"API_ACCESS_TOKEN=" + s.Token,
		"SERVER_LISTEN_ADDR=127.0.0.1",
		"SERVER_LISTEN_PORT=0",
		"SERVER_INSTANCE_NAME=" + s.Owner,
		"LOG_FORMAT=json",
		"LOG_LEVEL=debug",
	}, env...)
	if h := os.Getenv("DOCKER_HOST"); h != "" {
		s.cmd.Env = append(s.cmd.Env, "DOCKER_HOST="+h)
	}
	stderr, err := s.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("start docker-run: %v", err)
	}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			line := sc.Bytes()
			s.mu.Lock()
			s.logs.Write(line)
			s.logs.WriteByte('\n')
			s.mu.Unlock()
			var rec struct {
				Msg  string `json:"msg"`
				Addr string `json:"addr"`
			}
			if json.Unmarshal(line, &rec) == nil && rec.Msg == "listening" {
				addr <- rec.Addr
			}
		}
		io.Copy(io.Discard, stderr)
		s.err = s.cmd.Wait()
		close(s.exited)
	}()
	select {
	case a := <-addr:
		s.URL = "http://" + a
	case <-s.exited:
		t.Fatalf("docker-run exited before listening: %v\n%s", s.err, s.Logs())
	case <-time.After(30 * time.Second):
		s.cmd.Process.Kill()
		t.Fatalf("docker-run did not listen within 30s\n%s", s.Logs())
	}
	t.Cleanup(func() {
		if err := s.Stop(30 * time.Second); err != nil {
			t.Errorf("stop docker-run: %v\n%s", err, s.Logs())
		}
		WaitNoContainers(t, "dockerrun.owner", s.Owner, 15*time.Second)
	})
	return s
}

// Logs returns what the server has logged so far.
func (s *Server) Logs() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.logs.String()
}

// Pid returns the server's process id.
func (s *Server) Pid() int { return s.cmd.Process.Pid }

// Stop sends SIGTERM and waits up to timeout for the server to exit; it
// returns an error unless the server exited 0. Stopping twice is fine.
func (s *Server) Stop(timeout time.Duration) error {
	select {
	case <-s.exited:
		return s.err
	default:
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
		return s.err
	case <-time.After(timeout):
		s.cmd.Process.Kill()
		<-s.exited
		return fmt.Errorf("no exit within %v of SIGTERM: killed", timeout)
	}
}

// Exited is closed when the server process has exited.
func (s *Server) Exited() <-chan struct{} { return s.exited }

// Do sends a request with the access token and returns the status and body.
func (s *Server) Do(ctx context.Context, method, path string, body []byte) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, s.URL+path, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("X-Access-Token", s.Token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// Run posts {"image": image, "payload": payload} to /run.
func (s *Server) Run(ctx context.Context, image string, payload any) (int, []byte, error) {
	body, err := json.Marshal(map[string]any{"image": image, "payload": payload})
	if err != nil {
		return 0, nil, err
	}
	return s.Do(ctx, http.MethodPost, "/run", body)
}

// LanguageImages builds the named language images with
// examples/images/build.sh (which caches) and returns their tags
// ("dockerrun/<language>:latest"), failing the test if the build fails.
func LanguageImages(t testing.TB, languages ...string) []string {
	t.Helper()
	Docker(t)
	imagesMu.Lock()
	defer imagesMu.Unlock()
	var missing []string
	for _, l := range languages {
		if !imagesBuilt[l] {
			missing = append(missing, l)
		}
	}
	if len(missing) > 0 {
		root, err := moduleRoot()
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command("bash", append([]string{filepath.Join(root, "examples/images/build.sh")}, missing...)...)
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("examples/images/build.sh %s: %v\n%s", strings.Join(missing, " "), err, out)
		}
		for _, l := range missing {
			imagesBuilt[l] = true
		}
	}
	tags := make([]string, len(languages))
	for i, l := range languages {
		tags[i] = "dockerrun/" + l + ":latest"
	}
	return tags
}

var (
	imagesMu    sync.Mutex
	imagesBuilt = map[string]bool{}
)

// moduleRoot returns the directory of go.mod.
func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	return filepath.Dir(strings.TrimSpace(string(out))), nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)[:n]
}
