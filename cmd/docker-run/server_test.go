package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/docker/docker/api/types"
	"github.com/docker/docker/api/types/container"
	"github.com/google/go-cmp/cmp"

	"github.com/dockerrun/dockerrun"
	"github.com/dockerrun/dockerrun/internal/testenv"
)

// answer is a server's answer to one request.
type answer struct {
	status int
	body   []byte
}

// send sends one request to s with tok in X-Access-Token unless tok is
// empty.
func send(t *testing.T, ctx context.Context, s *testenv.Server, method, path, tok, body string) answer {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, method, s.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if tok != "" {
		req.Header.Set("X-Access-Token", tok)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	return answer{status: resp.StatusCode, body: b}
}

// runBody is the body of POST /run with payload inserted verbatim.
func runBody(image, payload string) string {
	return `{"image": "` + image + `", "payload": ` + payload + `}`
}

// apiError is the status and code of an error answer.
type apiError struct {
	Status int
	Code   string
}

// errorOf decodes an error answer, which must be exactly {"error",
// "message"}.
func errorOf(t *testing.T, a answer) apiError {
	t.Helper()
	var body map[string]string
	if err := json.Unmarshal(a.body, &body); err != nil {
		t.Fatalf("status %d: body %q is not an error object: %v", a.status, a.body, err)
	}
	if len(body) != 2 || body["error"] == "" || body["message"] == "" {
		t.Errorf("status %d: body %q: want exactly a non-empty error and message", a.status, a.body)
	}
	return apiError{Status: a.status, Code: body["error"]}
}

// echoPayload holds non-ASCII text, escapes and odd spacing, which must all
// reach the container byte for byte.
const echoPayload = "{\"mode\" : \"echo\",\t\"text\": \"h\u00e9llo w\u00f6rld \u2713 \u65e5\u672c\u8a9e \U0001F600\",\n \"esc\": \"\\u00e9\\\"\\n\", \"n\": [1, 2.50 ,3] }"

func TestServerAPI(t *testing.T) {
	t.Parallel()
	// Probe before StartServer, unlike the other tests, so that the image
	// and the server binary build at the same time.
	probe := testenv.Probe(t)
	s := testenv.StartServer(t)

	t.Run("root", func(t *testing.T) {
		t.Parallel()
		a := send(t, t.Context(), s, "GET", "/", "", "")
		var got map[string]string
		if err := json.Unmarshal(a.body, &got); err != nil {
			t.Fatalf("GET / body %q: %v", a.body, err)
		}
		if got["version"] == "" {
			t.Errorf("GET / version is empty: %q", a.body)
		}
		delete(got, "version")
		want := map[string]string{"name": "docker-run", "description": "Api for running code in transient docker containers"}
		if diff := cmp.Diff(answer{status: 200}, answer{status: a.status}, cmp.AllowUnexported(answer{})); diff != "" {
			t.Errorf("GET / status mismatch (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("GET / mismatch (-want +got):\n%s", diff)
		}
	})

	t.Run("version", func(t *testing.T) {
		t.Parallel()
		daemon, err := testenv.Docker(t).ServerVersion(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		a := send(t, t.Context(), s, "GET", "/version", s.Token, "")
		if a.status != http.StatusOK {
			t.Fatalf("GET /version status = %d, want 200; body %s", a.status, a.body)
		}
		var got struct {
			Docker types.Version `json:"docker"`
		}
		if err := json.Unmarshal(a.body, &got); err != nil {
			t.Fatalf("GET /version body %q: %v", a.body, err)
		}
		want := [3]string{daemon.Version, daemon.APIVersion, daemon.GitCommit}
		if diff := cmp.Diff(want, [3]string{got.Docker.Version, got.Docker.APIVersion, got.Docker.GitCommit}); diff != "" {
			t.Errorf("GET /version mismatch (-want +got):\n%s", diff)
		}
	})

	for _, tok := range []string{"", "wrong"} {
		t.Run("version with token "+tok, func(t *testing.T) {
			t.Parallel()
			a := send(t, t.Context(), s, "GET", "/version", tok, "")
			want := `{"error":"access_token","message":"Missing or wrong access token"}`
			if diff := cmp.Diff(want, strings.TrimSpace(string(a.body))); diff != "" {
				t.Errorf("GET /version body mismatch (-want +got):\n%s", diff)
			}
			if a.status != http.StatusUnauthorized {
				t.Errorf("GET /version status = %d, want 401", a.status)
			}
		})
	}

	t.Run("healthz", func(t *testing.T) {
		t.Parallel()
		if a := send(t, t.Context(), s, "GET", "/healthz", "", ""); a.status != http.StatusOK {
			t.Errorf("GET /healthz status = %d, want 200; body %s", a.status, a.body)
		}
	})

	t.Run("run echo", func(t *testing.T) {
		t.Parallel()
		a := send(t, t.Context(), s, "POST", "/run", s.Token, runBody(probe, echoPayload))
		if a.status != http.StatusOK {
			t.Fatalf("POST /run status = %d, want 200; body %s", a.status, a.body)
		}
		var got map[string]any
		if err := json.Unmarshal(a.body, &got); err != nil {
			t.Fatalf("POST /run body %q: %v", a.body, err)
		}
		want := map[string]any{
			"stdout":   echoPayload, // what the probe read on stdin
			"stderr":   "",
			"error":    "",
			"duration": 1234.0,
			"extra":    []any{1.0, 2.0},
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("POST /run mismatch (-want +got):\n%s", diff)
		}
	})

	tests := []struct {
		name string
		tok  string
		body string
		path string
		want apiError
	}{
		{name: "agent stderr", body: runBody(probe, `{"mode":"stderr"}`), want: apiError{500, "coderunner.stderr"}},
		{name: "agent invalid JSON", body: runBody(probe, `{"mode":"invalid"}`), want: apiError{500, "coderunner.stdout.decode"}},
		{name: "missing image", body: runBody("dockerrun-test/missing:latest", `{"mode":"echo"}`), want: apiError{400, "docker.container.create"}},
		{name: "no token", tok: "-", body: runBody(probe, `{"mode":"echo"}`), want: apiError{401, "access_token"}},
		{name: "body not JSON", body: `image=x`, want: apiError{400, "request.parse"}},
		{name: "payload not an object", body: runBody(probe, `"echo"`), want: apiError{400, "request.invalid"}},
		{name: "no such route", path: "/runs", body: runBody(probe, `{"mode":"echo"}`), want: apiError{404, "route.not_found"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tok, path := s.Token, "/run"
			if tt.tok == "-" {
				tok = ""
			}
			if tt.path != "" {
				path = tt.path
			}
			a := send(t, t.Context(), s, "POST", path, tok, tt.body)
			if diff := cmp.Diff(tt.want, errorOf(t, a)); diff != "" {
				t.Errorf("POST %s mismatch (-want +got):\n%s", path, diff)
			}
		})
	}
}

func TestServerLimits(t *testing.T) {
	t.Parallel()
	const limit = 2 * time.Second
	s := testenv.StartServer(t, "RUN_MAX_EXECUTION_TIME=2", "RUN_MAX_OUTPUT_SIZE=65536")
	probe := testenv.Probe(t)

	// The limit counts from the payload's write, after the container is
	// created and started, which takes seconds on a loaded daemon (a CI
	// machine running every package's tests at once). The bound still
	// tells the limit from a run that never ends (the sleep is an hour).
	const slack = 15 * time.Second
	tests := []struct {
		name       string
		payload    string
		want       apiError
		wantStdout int // bytes of stdout in a 200 answer
		minTime    time.Duration
		maxTime    time.Duration
	}{
		{name: "sleep", payload: `{"mode":"echo","sleep":"1h"}`, want: apiError{400, "limits.execution_time"}, minTime: limit + dockerrun.AnswerGrace, maxTime: limit + slack},
		{name: "trickle", payload: `{"mode":"trickle"}`, want: apiError{400, "limits.execution_time"}, minTime: limit + dockerrun.AnswerGrace, maxTime: limit + slack},
		{name: "flood", payload: `{"mode":"flood"}`, want: apiError{400, "limits.read.size"}, maxTime: limit + slack},
		{name: "within limits", payload: `{"mode":"big","bytes":30000,"sleep":"500ms"}`, want: apiError{200, ""}, wantStdout: 30000, minTime: 500 * time.Millisecond, maxTime: limit + slack},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			start := time.Now()
			a := send(t, t.Context(), s, "POST", "/run", s.Token, runBody(probe, tt.payload))
			took := time.Since(start)
			t.Logf("POST /run took %v", took.Round(time.Millisecond))
			got := apiError{Status: a.status}
			if a.status != http.StatusOK {
				got = errorOf(t, a)
			} else {
				var res struct{ Stdout string }
				json.Unmarshal(a.body, &res)
				if len(res.Stdout) != tt.wantStdout {
					t.Errorf("POST /run stdout is %d bytes, want %d", len(res.Stdout), tt.wantStdout)
				}
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("POST /run mismatch (-want +got):\n%s", diff)
			}
			if took < tt.minTime || took > tt.maxTime {
				t.Errorf("POST /run took %v, want from %v to %v", took.Round(time.Millisecond), tt.minTime, tt.maxTime)
			}
		})
	}
}

// waitContainers polls until the server has containers (exist) or has none
// (!exist), and fails the test after timeout.
func waitContainers(t *testing.T, s *testenv.Server, exist bool, timeout time.Duration) {
	t.Helper()
	if !exist {
		testenv.WaitNoContainers(t, dockerrun.LabelOwner, s.Owner, timeout)
		return
	}
	testenv.WaitContainers(t, dockerrun.LabelOwner, s.Owner, timeout, "a container", func(list []container.Summary) bool { return len(list) > 0 })
}

func TestServerClientGone(t *testing.T) {
	t.Parallel()
	s := testenv.StartServer(t)
	probe := testenv.Probe(t)

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	done := make(chan error, 1)
	start := time.Now()
	go func() {
		req, err := http.NewRequestWithContext(ctx, "POST", s.URL+"/run", strings.NewReader(runBody(probe, `{"mode":"echo","sleep":"1h"}`)))
		if err == nil {
			req.Header.Set("X-Access-Token", s.Token)
			var resp *http.Response
			if resp, err = http.DefaultClient.Do(req); err == nil {
				resp.Body.Close()
			}
		}
		done <- err
	}()
	waitContainers(t, s, true, 10*time.Second)
	time.Sleep(time.Second - time.Since(start))
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("POST /run error = %v, want context.Canceled", err)
	}
	gone := time.Now()
	waitContainers(t, s, false, 8*time.Second)
	t.Logf("container removed %v after the client went away", time.Since(gone).Round(time.Millisecond))

	// The request log names the cause.
	for !strings.Contains(s.Logs(), `"code":"run.canceled"`) {
		if time.Since(gone) > 5*time.Second {
			t.Fatalf("server log has no run.canceled line:\n%s", s.Logs())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestServerGracefulShutdown(t *testing.T) {
	t.Parallel()
	s := testenv.StartServer(t)
	probe := testenv.Probe(t)
	payload := `{"mode":"echo","sleep":"2s","text":"in flight"}`

	type result struct {
		a   answer
		err error
	}
	done := make(chan result, 1)
	go func() {
		status, body, err := s.Do(context.Background(), "POST", "/run", []byte(runBody(probe, payload)))
		done <- result{answer{status, body}, err}
	}()
	waitContainers(t, s, true, 10*time.Second)
	if err := syscall.Kill(s.Pid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}

	// The listener closes at once, while the run goes on.
	u, err := url.Parse(s.URL)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(time.Second)
	for {
		c, err := net.DialTimeout("tcp", u.Host, 200*time.Millisecond)
		// A connection that was in the accept queue when the listener
		// closed is reset: not served either, so dial again.
		if err == nil || errors.Is(err, syscall.ECONNRESET) {
			if c != nil {
				c.Close()
			}
			if time.Now().After(deadline) {
				t.Fatalf("new connections still accepted 1s after SIGTERM")
			}
			time.Sleep(20 * time.Millisecond)
			continue
		}
		if !errors.Is(err, syscall.ECONNREFUSED) {
			t.Errorf("dial after SIGTERM: %v, want connection refused", err)
		}
		break
	}
	select {
	case r := <-done:
		t.Errorf("run answered (%d %s, %v) before the listener closed: not in flight", r.a.status, r.a.body, r.err)
	default:
	}

	r := <-done
	if r.err != nil {
		t.Fatalf("POST /run in flight during shutdown: %v\n%s", r.err, s.Logs())
	}
	var got struct{ Stdout string }
	json.Unmarshal(r.a.body, &got)
	if diff := cmp.Diff(answer{status: 200}, answer{status: r.a.status}, cmp.AllowUnexported(answer{})); diff != "" {
		t.Errorf("POST /run in flight status mismatch (-want +got):\n%s\nbody %s", diff, r.a.body)
	}
	if got.Stdout != payload {
		t.Errorf("POST /run in flight stdout = %q, want %q", got.Stdout, payload)
	}

	select {
	case <-s.Exited():
	case <-time.After(15 * time.Second):
		t.Fatalf("server did not exit within 15s of SIGTERM\n%s", s.Logs())
	}
	if err := s.Stop(time.Second); err != nil {
		t.Errorf("server exit: %v, want exit status 0\n%s", err, s.Logs())
	}
	testenv.WaitNoContainers(t, dockerrun.LabelOwner, s.Owner, 10*time.Second)
}

// TestServerStartupFailure runs the binary with configurations it must
// refuse: it exits non-zero at once with a message that names the problem.
func TestServerStartupFailure(t *testing.T) {
	t.Parallel()
	bin := testenv.ServerBinary(t)
	tests := []struct {
		name string
		env  []string
		want []string // in the output
	}{
		{
			name: "docker unreachable",
			env:  []string{"API_ACCESS_TOKEN=t", "DOCKER_UNIX_SOCKET_PATH=/nonexistent.sock"},
			want: []string{"Docker daemon", "/nonexistent.sock"},
		},
		{
			name: "malformed port",
			env:  []string{"API_ACCESS_TOKEN=t", "SERVER_LISTEN_PORT=abc"},
			want: []string{"SERVER_LISTEN_PORT", "abc"},
		},
		{
			name: "several malformed",
			env:  []string{"API_ACCESS_TOKEN=t", "RUN_MAX_EXECUTION_TIME=10s", "DOCKER_CONTAINER_MEMORY=1g"},
			want: []string{"RUN_MAX_EXECUTION_TIME", "10s", "DOCKER_CONTAINER_MEMORY", "1g"},
		},
		{
			name: "no token",
			env:  []string{"SERVER_LISTEN_PORT=0"},
			want: []string{"API_ACCESS_TOKEN"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, bin)
			cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "SERVER_LISTEN_ADDR=127.0.0.1", "SERVER_LISTEN_PORT=0", "LOG_FORMAT=json"}, tt.env...)
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			err := cmd.Run()
			if ctx.Err() != nil {
				t.Fatalf("docker-run still running after 30s\n%s", out.String())
			}
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() <= 0 {
				t.Fatalf("docker-run error = %v, want a non-zero exit status\n%s", err, out.String())
			}
			for _, s := range tt.want {
				if !strings.Contains(out.String(), s) {
					t.Errorf("docker-run output does not name %q:\n%s", s, out.String())
				}
			}
			if strings.Contains(out.String(), `"msg":"listening"`) {
				t.Errorf("docker-run listened before failing:\n%s", out.String())
			}
		})
	}
}
