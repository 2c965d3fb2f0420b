package adversarial

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/client"
	"github.com/dockerrun/dockerrun/internal/testenv"
)

// The server's defaults that the attacks run into.
const (
	execLimit   = 10 * time.Second // RUN_MAX_EXECUTION_TIME
	outputLimit = 1 << 20          // RUN_MAX_OUTPUT_SIZE, bytes
	ownerLabel  = "dockerrun.owner"
	warmLabel   = "dockerrun.warm"
)

// slowStart bounds what a run takes besides its execution time: creating,
// attaching and starting a container (a gVisor sandbox boots), which on a
// busy two-core machine has taken up to 14 s. The execution time limit
// starts when the payload is written. The bounds still tell a run that was
// stopped at its limit from one that was not: the attacks would run for a
// minute or an hour.
const slowStart = 20 * time.Second

// Images the attacks run in.
var (
	pythonImage = testenv.Image("python")
	bashImage   = testenv.Image("bash")
)

// How far the server's goroutine and descriptor counts may be above their
// baseline once an attack is over: the Docker client keeps up to two idle
// connections to the daemon (two goroutines and a descriptor each) and the
// baseline may have been taken with none.
const (
	slackGoroutines = 4
	slackFDs        = 2
)

// httpClient opens a connection per request, so that no idle connection
// of the suite's holds a goroutine in the server when its counts are read.
var httpClient = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}

// target is a docker-run server under attack.
type target struct {
	*testenv.Server
	t        *testing.T
	rt       string
	debugURL string
	base     usage
	cli      *client.Client // the daemon the server uses
	warm     int            // idle warm containers it keeps (RUN_WARM_POOL)
}

// usage is what the server holds.
type usage struct {
	goroutines, fds int
}

// start starts a docker-run server with its defaults, under runtime rt,
// with env on top. It checks that a normal run succeeds and records the
// server's goroutine and descriptor counts. At the end of the test it
// checks that no container of the server's owner is left, that /healthz is
// 200, that a normal run succeeds and that the counts are back to the
// baseline; then testenv stops the server and checks that it exits 0.
func start(t *testing.T, rt string, env ...string) *target {
	t.Helper()
	return startOn(t, rt, testenv.Docker(t), 0, env...)
}

// startOn is start for a server that uses the daemon of cli (env gives it
// DOCKER_HOST) and keeps warm idle warm containers: the checks that no
// container is left expect those.
func startOn(t *testing.T, rt string, cli *client.Client, warm int, env ...string) *target {
	t.Helper()
	testenv.LanguageImages(t, "python", "bash")
	debugAddr := testenv.FreeAddr(t)
	env = append([]string{"DOCKER_CONTAINER_RUNTIME=" + rt, "SERVER_DEBUG_ADDR=" + debugAddr}, env...)
	tg := &target{Server: testenv.StartServer(t, env...), t: t, rt: rt, cli: cli, warm: warm}
	for _, kv := range env {
		if owner, ok := strings.CutPrefix(kv, "SERVER_INSTANCE_NAME="); ok {
			tg.Owner = owner // the one in effect, for every check
		}
	}
	tg.debugURL = "http://" + debugAddr
	tg.runNormally("before the attack")
	tg.base = tg.quiet()
	t.Cleanup(tg.after)
	return tg
}

// after checks that the server came through the attack unharmed.
func (tg *target) after() {
	t := tg.t
	select {
	case <-tg.Exited():
		t.Errorf("the server exited during the test\n%s", tg.Logs())
		return
	default:
	}
	tg.settle(20 * time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if r, err := tg.do(ctx, http.MethodGet, "/healthz", nil, nil); err != nil || r.status != http.StatusOK {
		t.Errorf("after the attack: GET /healthz = %d, %v; want 200", r.status, err)
	}
	tg.runNormally("after the attack")
	tg.settle(20 * time.Second)
	tg.checkUsage()
}

// runNormally fails the test unless a normal python run succeeds.
func (tg *target) runNormally(when string) {
	tg.t.Helper()
	r := tg.python(context.Background(), `print("ok")`)
	if r.status != http.StatusOK || r.stdout != "ok\n" || r.agentErr != "" {
		tg.t.Fatalf("%s: a normal python run answered %s\n%s", when, r.detail(), tg.Logs())
	}
}

// quiet waits until no container of the server is left and returns the
// lowest counts seen over half a second.
func (tg *target) quiet() usage {
	tg.t.Helper()
	tg.settle(20 * time.Second)
	low := tg.usage()
	for range 5 {
		time.Sleep(100 * time.Millisecond)
		u := tg.usage()
		low.goroutines = min(low.goroutines, u.goroutines)
		low.fds = min(low.fds, u.fds)
	}
	return low
}

// usage reads the server's goroutine count from its debug listener and
// counts its descriptors in /proc.
func (tg *target) usage() usage {
	tg.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, tg.debugURL+"/debug/vars", nil)
	resp, err := httpClient.Do(req)
	if err != nil {
		tg.t.Fatalf("debug vars: %v", err)
	}
	defer resp.Body.Close()
	var vars struct {
		Goroutines int `json:"goroutines"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&vars); err != nil || vars.Goroutines == 0 {
		tg.t.Fatalf("debug vars: %v (goroutines %d)", err, vars.Goroutines)
	}
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", tg.Pid()))
	if err != nil {
		tg.t.Fatalf("server's descriptors: %v", err)
	}
	return usage{goroutines: vars.Goroutines, fds: len(fds)}
}

// checkUsage fails the test unless the server's counts come back to the
// baseline (within the slack) in a few seconds.
func (tg *target) checkUsage() {
	t := tg.t
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		u := tg.usage()
		if u.goroutines <= tg.base.goroutines+slackGoroutines && u.fds <= tg.base.fds+slackFDs {
			t.Logf("server: %d goroutines, %d descriptors; %d and %d before the attack", u.goroutines, u.fds, tg.base.goroutines, tg.base.fds)
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("the server holds %d goroutines and %d descriptors after the attack; %d and %d before (slack %d, %d)\n%s",
				u.goroutines, u.fds, tg.base.goroutines, tg.base.fds, slackGoroutines, slackFDs, tg.goroutineDump())
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func (tg *target) goroutineDump() string {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, tg.debugURL+"/debug/pprof/goroutine?debug=1", nil)
	resp, err := httpClient.Do(req)
	if err != nil {
		return err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 16<<10))
	return string(b)
}

// logged returns the field of the first JSON log line whose msg is msg.
func logged(logs, msg, field string) (string, error) {
	sc := bufio.NewScanner(strings.NewReader(logs))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var rec map[string]any
		if json.Unmarshal(sc.Bytes(), &rec) == nil && rec["msg"] == msg {
			if v, ok := rec[field]; ok {
				return fmt.Sprint(v), nil
			}
		}
	}
	return "", fmt.Errorf("no log line %q with %q", msg, field)
}

// response is what the server answered.
type response struct {
	status int
	header http.Header
	body   []byte
	took   time.Duration
	// An error answer: {"error": code, "message": message}.
	code, message string
	// A run's answer: the agent's stdout, stderr and error fields.
	stdout, stderr, agentErr string
}

// detail describes r in full, for failure messages.
func (r response) detail() string {
	body := r.body
	if len(body) > 2048 {
		body = append(body[:2048:2048], "..."...)
	}
	return fmt.Sprintf("status %d after %v: %s", r.status, r.took.Round(time.Millisecond), body)
}

// String describes r in a few words, for the table in docs/security.md.
func (r response) String() string {
	var s string
	switch {
	case r.status == 0:
		s = "no answer"
	case r.status == http.StatusOK && r.agentErr == "":
		s = "200, no error"
	case r.status == http.StatusOK:
		s = fmt.Sprintf("200, agent's error %q", clip(firstLine(r.agentErr), 70))
	default:
		s = fmt.Sprintf("%d `%s`", r.status, r.code)
	}
	return fmt.Sprintf("%s in %.1f s", s, r.took.Seconds())
}

// agentDuration returns the agent's own "duration" field.
func agentDuration(t *testing.T, r response) time.Duration {
	t.Helper()
	var a struct {
		Duration *int64 `json:"duration"`
	}
	if err := json.Unmarshal(r.body, &a); err != nil || a.Duration == nil {
		t.Fatalf("no duration in the answer: %s", r.detail())
	}
	return time.Duration(*a.Duration)
}

func firstLine(s string) string {
	first, _, _ := strings.Cut(s, "\n")
	return first
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// do sends a request to the server with its access token, unless hdr sets
// X-Access-Token itself.
func (tg *target) do(ctx context.Context, method, path string, body []byte, hdr map[string]string) (response, error) {
	req, err := http.NewRequestWithContext(ctx, method, tg.URL+path, bytes.NewReader(body))
	if err != nil {
		return response{}, err
	}
	req.Header.Set("X-Access-Token", tg.Token)
	req.Header.Set("Content-Type", "application/json")
	for k, v := range hdr {
		if v == "" {
			req.Header.Del(k)
		} else {
			req.Header.Set(k, v)
		}
	}
	start := time.Now()
	resp, err := httpClient.Do(req)
	if err != nil {
		return response{took: time.Since(start)}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	r := response{status: resp.StatusCode, header: resp.Header, body: b, took: time.Since(start)}
	if err != nil {
		return r, err
	}
	if r.status == http.StatusOK && path == "/run" {
		var a struct {
			Stdout, Stderr, Error string
		}
		if err := json.Unmarshal(b, &a); err != nil {
			return r, fmt.Errorf("decode answer: %w", err)
		}
		r.stdout, r.stderr, r.agentErr = a.Stdout, a.Stderr, a.Error
	} else if r.status != http.StatusOK {
		var e struct{ Error, Message string }
		if err := json.Unmarshal(b, &e); err != nil {
			return r, fmt.Errorf("decode error answer: %w", err)
		}
		r.code, r.message = e.Error, e.Message
	}
	return r, nil
}

// tryRun posts {"image": image, "payload": payload}, waiting at most two
// minutes for the answer.
func (tg *target) tryRun(ctx context.Context, image string, payload any) (response, error) {
	body, err := json.Marshal(map[string]any{"image": image, "payload": payload})
	if err != nil {
		return response{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	r, err := tg.do(ctx, http.MethodPost, "/run", body, nil)
	if err != nil {
		return r, fmt.Errorf("POST /run: %w (%s)", err, r.detail())
	}
	return r, nil
}

// pythonPayload runs code as main.py.
func pythonPayload(code string) map[string]any {
	return map[string]any{
		"language": "python",
		"files":    []map[string]string{{"name": "main.py", "content": code}},
	}
}

// python runs code as main.py in the python image; it fails the test if
// no answer comes.
func (tg *target) python(ctx context.Context, code string) response {
	tg.t.Helper()
	r, err := tg.tryRun(ctx, pythonImage, pythonPayload(code))
	if err != nil {
		tg.t.Fatal(err)
	}
	return r
}

// bash runs script as main.sh in the bash image; it fails the test if no
// answer comes.
func (tg *target) bash(ctx context.Context, script string) response {
	tg.t.Helper()
	r, err := tg.tryRun(ctx, bashImage, map[string]any{
		"language": "bash",
		"files":    []map[string]string{{"name": "main.sh", "content": script}},
	})
	if err != nil {
		tg.t.Fatal(err)
	}
	return r
}

// goPython runs code like python, in a goroutine: the answer comes on the
// channel, and a failure to get one fails the test without stopping it.
func (tg *target) goPython(code string) <-chan response {
	ch := make(chan response, 1)
	go func() {
		r, err := tg.tryRun(context.Background(), pythonImage, pythonPayload(code))
		if err != nil {
			tg.t.Error(err)
		}
		ch <- r
	}()
	return ch
}

// settle waits until the server's only containers are its idle warm ones,
// running, as many as it keeps.
func (tg *target) settle(timeout time.Duration) {
	tg.t.Helper()
	what := "no container"
	if tg.warm > 0 {
		what = fmt.Sprintf("exactly %d idle warm containers", tg.warm)
	}
	testenv.WaitContainersOn(tg.t, tg.cli, ownerLabel, tg.Owner, timeout, what, func(list []container.Summary) bool {
		idle := 0
		for _, c := range list {
			if c.State == "running" && c.Labels[warmLabel] == "true" {
				idle++
			}
		}
		return len(list) == tg.warm && idle == tg.warm
	})
}

// waitRunning waits until a container of the server is running and returns
// its id.
func (tg *target) waitRunning(timeout time.Duration) string {
	tg.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		for _, c := range testenv.ContainersOn(tg.t, tg.cli, ownerLabel, tg.Owner) {
			if c.State == "running" && c.Labels[warmLabel] != "true" {
				return c.ID
			}
		}
		if time.Now().After(deadline) {
			tg.t.Fatalf("no container of %s running within %v", tg.Owner, timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// expect fails the test unless r has the status and, for an error, the
// code.
func expect(t *testing.T, r response, status int, code string) {
	t.Helper()
	if r.status != status || r.code != code {
		t.Fatalf("want %d %q, got %s", status, code, r.detail())
	}
}

// expectAgentError fails the test unless r is a 200 whose error field
// starts with prefix.
func expectAgentError(t *testing.T, r response, prefix string) {
	t.Helper()
	if r.status != http.StatusOK || !strings.HasPrefix(r.agentErr, prefix) {
		t.Fatalf("want 200 with an error starting %q, got %s", prefix, r.detail())
	}
}

// within fails the test unless r took from lo to hi.
func within(t *testing.T, r response, lo, hi time.Duration) {
	t.Helper()
	if r.took < lo || r.took > hi {
		t.Fatalf("answer took %v, want %v to %v: %s", r.took.Round(time.Millisecond), lo, hi, r.detail())
	}
}
