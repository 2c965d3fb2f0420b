// Package serverproc runs cmd/docker-run as a child process on a free
// loopback port, for the integration tests, the adversarial suite and the
// benchmark. It builds the binary, starts it on a socket of its own making
// (socket activation: LISTEN_FDS), waits until it answers, keeps its log
// for error messages, and stops it.
package serverproc

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Build compiles cmd/docker-run into dir and returns the binary's path. It
// runs `go build`, so the working directory must be inside the module.
func Build(ctx context.Context, dir string) (string, error) {
	bin := filepath.Join(dir, "docker-run")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/dockerrun/dockerrun/cmd/docker-run")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build cmd/docker-run (run from inside the module): %v\n%s", err, out)
	}
	return bin, nil
}

// passed are the variables of this process that the server inherits: where
// the Docker daemon is, and the Go runtime's memory settings.
var passed = []string{"DOCKER_HOST", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH", "DOCKER_API_VERSION", "GOGC", "GOMEMLIMIT"}

// Options say how to start a server.
type Options struct {
	// Env is added to the base environment, and wins over it: PATH and the
	// Docker and Go memory variables of this process, API_ACCESS_TOKEN
	// (Token: do not set another here), LISTEN_FDS=1 (the socket Start
	// makes) and LOG_FORMAT=json.
	Env []string
	// Token is the server's access token. Default: a random one.
	Token string
	// Addr is the address the server listens on, for a server that must
	// be found at a known address (behind a load balancer, or started
	// again where another was). Default: a free loopback port.
	Addr string
	// KeepLines is how many of the last log lines are kept; 0 keeps all.
	KeepLines int
	// ListenTimeout bounds the wait for the server to answer; 0 means 30 s.
	ListenTimeout time.Duration
}

// Proc is a running docker-run process.
type Proc struct {
	// URL is the server's base URL, e.g. http://127.0.0.1:40123.
	URL string
	// Token is its access token, random.
	Token string

	cmd    *exec.Cmd
	exited chan struct{}
	err    error // the exit status, once exited is closed

	mu    sync.Mutex
	lines []string
	keep  int
}

// Start starts the server binary bin on a loopback socket that it makes and
// passes (LISTEN_FDS), and waits until the server answers GET /, which it
// does once it has checked its configuration and the daemon. If the server
// exits first, does not answer in time, or ctx ends, Start kills it and
// returns an error that includes its log.
func Start(ctx context.Context, bin string, o Options) (*Proc, error) {
	p := &Proc{Token: o.Token, exited: make(chan struct{}), keep: o.KeepLines}
	if p.Token == "" {
		p.Token = rand.Text()
	}
	addr := o.Addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	p.URL = "http://" + ln.Addr().String()
	sock, err := ln.(*net.TCPListener).File()
	ln.Close() // sock is a copy, which the server inherits
	if err != nil {
		return nil, err
	}
	defer sock.Close()
	env := []string{"PATH=" + os.Getenv("PATH"), "API_ACCESS_TOKEN=" + p.Token, "LISTEN_FDS=1", "LOG_FORMAT=json"}
	for _, k := range passed {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	// exec.Cmd keeps the last value of a variable set twice.
	p.cmd = exec.Command(bin)
	p.cmd.Env = append(env, o.Env...)
	p.cmd.ExtraFiles = []*os.File{sock}
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start docker-run: %w", err)
	}
	sock.Close() // the server's copy alone: its exit resets waiting clients
	go p.follow(stderr)

	timeout := o.ListenTimeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	answered := make(chan error, 1)
	go func() {
		status, _, err := p.Do(ctx, nil, http.MethodGet, "/", nil)
		if err == nil && status != http.StatusOK {
			err = fmt.Errorf("GET / answered %d", status)
		}
		answered <- err
	}()
	select {
	case err = <-answered:
		if err == nil {
			return p, nil
		}
	case <-p.exited:
	}
	p.Kill()
	var exit *exec.ExitError
	if errors.As(p.err, &exit) && exit.ExitCode() >= 0 {
		return nil, fmt.Errorf("docker-run exited before listening: %v\n%s", p.err, p.Logs())
	}
	return nil, fmt.Errorf("docker-run did not answer GET / within %v: %v\n%s", timeout, err, p.Logs())
}

// follow keeps the server's log until it exits.
func (p *Proc) follow(r io.Reader) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		p.mu.Lock()
		p.lines = append(p.lines, sc.Text())
		if p.keep > 0 && len(p.lines) > p.keep {
			p.lines = p.lines[len(p.lines)-p.keep:]
		}
		p.mu.Unlock()
	}
	// A line too long for the scanner ends the loop: drain the rest so
	// that the server never blocks writing its log.
	io.Copy(io.Discard, r)
	p.err = p.cmd.Wait()
	close(p.exited)
}

// Logs returns the log lines kept so far, one per line.
func (p *Proc) Logs() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.lines, "\n")
}

// Pid returns the server's process id.
func (p *Proc) Pid() int { return p.cmd.Process.Pid }

// Exited is closed when the server process has exited.
func (p *Proc) Exited() <-chan struct{} { return p.exited }

// Stop sends SIGTERM and waits up to timeout for the server to exit; it
// returns an error unless the server exited with status 0. Past timeout it
// kills the server. Stopping an exited server returns its exit status.
func (p *Proc) Stop(timeout time.Duration) error {
	select {
	case <-p.exited:
		return p.err
	default:
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
		return p.err
	case <-time.After(timeout):
		p.Kill()
		return fmt.Errorf("docker-run did not exit within %v of SIGTERM: killed", timeout)
	}
}

// Kill sends SIGKILL and waits until the process is gone: the server gets
// no chance to clean up.
func (p *Proc) Kill() {
	err := p.cmd.Process.Signal(syscall.SIGKILL)
	if err == nil || errors.Is(err, os.ErrProcessDone) {
		<-p.exited
	}
}

// Do sends a request with the access token and returns the status and the
// body. A nil client means http.DefaultClient.
func (p *Proc) Do(ctx context.Context, client *http.Client, method, path string, body []byte) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, p.URL+path, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("X-Access-Token", p.Token)
	req.Header.Set("Content-Type", "application/json")
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// Run posts {"image": image, "payload": payload} to /run.
func (p *Proc) Run(ctx context.Context, client *http.Client, image string, payload any) (int, []byte, error) {
	body, err := json.Marshal(map[string]any{"image": image, "payload": payload})
	if err != nil {
		return 0, nil, err
	}
	return p.Do(ctx, client, http.MethodPost, "/run", body)
}
