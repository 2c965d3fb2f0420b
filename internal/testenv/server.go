package testenv

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/client"

	"github.com/dockerrun/dockerrun/internal/serverproc"
)

// Server is a docker-run server process started by a test.
type Server struct {
	// URL is the server's base URL, e.g. http://127.0.0.1:40123.
	URL string
	// Token is its access token.
	Token string
	// Owner is its SERVER_INSTANCE_NAME, the owner label of its containers.
	Owner string

	proc   *serverproc.Proc
	killed bool // by Kill: the end of the test does not ask for exit status 0
}

var (
	serverOnce sync.Once
	serverBin  string
	serverErr  error
)

// ServerBinary builds cmd/docker-run once per test binary and returns its
// path, for tests that run the server themselves (for example to watch it
// fail at start-up, or to kill it). It needs no Docker engine.
func ServerBinary(t testing.TB) string {
	t.Helper()
	serverOnce.Do(func() { serverBin, serverErr = buildServer() })
	if serverErr != nil {
		t.Fatal(serverErr)
	}
	return serverBin
}

// buildServer builds cmd/docker-run into a temporary directory and moves
// it to one path shared by every test binary of this checkout: test
// binaries build at the same time, and a rename replaces the file without
// disturbing a server that runs it, while nothing is left behind but the
// one file. Another checkout gets another path, so that it never runs this
// one's server.
func buildServer() (string, error) {
	root, err := moduleRoot()
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256([]byte(root))
	dir := filepath.Join(os.TempDir(), "dockerrun-test-"+hex.EncodeToString(sum[:6]))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	tmp, err := os.MkdirTemp(dir, "build-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	bin, err := serverproc.Build(context.Background(), tmp)
	if err != nil {
		return "", err
	}
	final := filepath.Join(dir, "docker-run")
	return final, os.Rename(bin, final)
}

// StartServer starts cmd/docker-run on a free loopback port with env added
// to a minimal environment (a random API_ACCESS_TOKEN, a unique
// SERVER_INSTANCE_NAME, JSON logs at debug level). It waits until the
// server listens. At the end of the test it stops the server with SIGTERM,
// fails the test unless it exits 0, and checks that no container of its
// owner is left.
func StartServer(t testing.TB, env ...string) *Server {
	t.Helper()
	return StartServerWith(t, ServerOptions{Env: env})
}

// ServerOptions say how [StartServerWith] starts a server.
type ServerOptions struct {
	// Env is added to the minimal environment, as for [StartServer].
	Env []string
	// Owner is the server's SERVER_INSTANCE_NAME. Default: a unique name.
	Owner string
	// Token is the server's access token (servers behind one load
	// balancer share one). Default: a random one.
	Token string
	// Addr is the address the server listens on. Default: a free loopback
	// port.
	Addr string
	// Docker is a client of the daemon the server uses (set DOCKER_HOST
	// in Env to match), where the end of the test looks for leftover
	// containers. Default: the shared daemon.
	Docker *client.Client
}

// StartServerWith is [StartServer] with options: a server of another
// daemon, or one with a given owner (a server started again after
// [Server.Kill], which must reap what the killed one left).
func StartServerWith(t testing.TB, o ServerOptions) *Server {
	t.Helper()
	if o.Docker == nil {
		o.Docker = Docker(t)
	}
	if o.Owner == "" {
		o.Owner = "test-" + rand.Text()[:10]
	}
	p, err := serverproc.Start(context.Background(), ServerBinary(t), serverproc.Options{
		Env:   append([]string{"SERVER_INSTANCE_NAME=" + o.Owner, "LOG_LEVEL=debug"}, o.Env...),
		Token: o.Token,
		Addr:  o.Addr,
	})
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{URL: p.URL, Token: p.Token, Owner: o.Owner, proc: p}
	t.Cleanup(func() {
		if err := s.Stop(30 * time.Second); err != nil && !s.killed {
			t.Errorf("stop docker-run: %v\n%s", err, s.Logs())
		}
		if !s.killed {
			WaitContainersOn(t, o.Docker, "dockerrun.owner", s.Owner, 15*time.Second, "no container", func(list []container.Summary) bool { return len(list) == 0 })
		}
	})
	return s
}

// Kill kills the server with SIGKILL and waits until it is gone: it gets
// no chance to remove its containers. The end of the test then neither
// wants exit status 0 nor checks for its containers: a server started
// again with the same owner is the one to reap them.
func (s *Server) Kill() {
	s.killed = true
	s.proc.Kill()
}

// Logs returns what the server has logged so far.
func (s *Server) Logs() string { return s.proc.Logs() }

// Pid returns the server's process id.
func (s *Server) Pid() int { return s.proc.Pid() }

// Stop sends SIGTERM and waits up to timeout for the server to exit; it
// returns an error unless the server exited 0. Stopping twice is fine.
func (s *Server) Stop(timeout time.Duration) error { return s.proc.Stop(timeout) }

// Exited is closed when the server process has exited.
func (s *Server) Exited() <-chan struct{} { return s.proc.Exited() }

// Do sends a request with the access token and returns the status and body.
func (s *Server) Do(ctx context.Context, method, path string, body []byte) (int, []byte, error) {
	return s.proc.Do(ctx, nil, method, path, body)
}

// Run posts {"image": image, "payload": payload} to /run.
func (s *Server) Run(ctx context.Context, image string, payload any) (int, []byte, error) {
	return s.proc.Run(ctx, nil, image, payload)
}

// ImagePrefix is the name prefix of the language images the tests use:
// DOCKERRUN_IMAGES_PREFIX, as for examples/images/build.sh, or "dockerrun".
// Two work trees whose agents differ test side by side on one daemon by
// giving each its own prefix.
func ImagePrefix() string {
	if p := os.Getenv("DOCKERRUN_IMAGES_PREFIX"); p != "" {
		return p
	}
	return "dockerrun"
}

// Image returns the tag of the language image the tests use for language:
// "<prefix>/<language>:latest" (see [ImagePrefix]).
func Image(language string) string { return ImagePrefix() + "/" + language + ":latest" }

// LanguageImages builds the named language images with
// examples/images/build.sh (which caches) and returns their tags (see
// [Image]), failing the test if the build fails.
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
		tags[i] = Image(l)
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
