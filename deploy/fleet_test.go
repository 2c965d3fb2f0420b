package deploy

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/client"

	"github.com/dockerrun/dockerrun"
	"github.com/dockerrun/dockerrun/internal/testenv"
)

// haproxyConfig is the load balancer's configuration, as docs/scaling.md
// shows it. %s are the listen address and the two servers' addresses.
//
//   - Active health checks on GET /readyz every 200 ms: a server is taken
//     out after 2 failures and back after 2 successes.
//   - observe layer7: three 5xx answers in a row take a server out at
//     once, before the next check (a server whose daemon just died answers
//     500 docker.unixsocket quickly, and would otherwise take many runs).
//   - retries with redispatch happen only on connection failures (the
//     default retry-on conn-failure): a request that reached a server is
//     never sent again, since a run is not idempotent in general.
const haproxyConfig = `global
	maxconn 256

defaults
	mode http
	timeout connect 1s
	timeout client 60s
	timeout server 60s
	timeout check 2s
	retries 3
	option redispatch

frontend runs
	bind %s
	default_backend dockerrun

backend dockerrun
	balance roundrobin
	option httpchk GET /readyz
	http-check expect status 200
	default-server inter 200ms fall 2 rise 2 observe layer7 error-limit 3 on-error mark-down
	http-response set-header X-Served-By %%s
	server a %s check
	server b %s check
`

// startHAProxy starts haproxy in the foreground with cfg, stopped when the
// test ends.
func startHAProxy(t *testing.T, cfg string) {
	t.Helper()
	bin, err := exec.LookPath("haproxy")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("haproxy not found under CI=true (.ci/setup-fleet.sh installs it): %v", err)
		}
		t.Skipf("haproxy not found (bash .ci/setup-fleet.sh installs it): %v", err)
	}
	path := filepath.Join(t.TempDir(), "haproxy.cfg")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(bin, "-c", "-f", path).CombinedOutput(); err != nil {
		t.Fatalf("haproxy -c: %v\n%s", err, out)
	}
	var logs bytes.Buffer
	cmd := exec.Command(bin, "-db", "-f", path)
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatalf("start haproxy: %v", err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("haproxy's log:\n%s", logs.String())
		}
	})
}

// outcome is one request sent through the balancer.
type outcome struct {
	start, end time.Time
	status     int    // 0: no answer
	code       string // the error code of an error answer, or the transport error
	server     string // X-Served-By: a, b, or "" when no server answered
}

func (o outcome) ok() bool { return o.status == http.StatusOK }

// TestFleet runs two servers, each beside its own Docker daemon (two
// private daemons standing in for two hosts), behind HAProxy that
// health-checks GET /readyz. A bounded batch of runs goes through the
// balancer while server A is killed (SIGKILL) and started again, and then
// daemon B is stopped and started again. It measures the failed requests,
// checks that the balancer moved the traffic to the healthy node each time
// and that nothing was left on any daemon.
func TestFleet(t *testing.T) {
	if _, err := exec.LookPath("haproxy"); err != nil && os.Getenv("CI") != "true" {
		t.Skipf("haproxy not found (bash .ci/setup-fleet.sh installs it): %v", err)
	}
	python := testenv.LanguageImages(t, "python")[0]
	daemons := map[string]*testenv.Dockerd{"a": testenv.StartDockerd(t, testenv.DockerdOptions{}), "b": testenv.StartDockerd(t, testenv.DockerdOptions{})}
	clients := map[string]*client.Client{}
	for name, d := range daemons {
		d.LoadImages(t, python)
		clients[name] = d.Client(t)
	}
	token := rand.Text()
	addrs := map[string]string{"a": testenv.FreeAddr(t), "b": testenv.FreeAddr(t)}
	owners := map[string]string{"a": "fleet-a", "b": "fleet-b"}
	start := func(name string) *testenv.Server {
		return testenv.StartServerWith(t, testenv.ServerOptions{
			Owner:  owners[name],
			Token:  token,
			Addr:   addrs[name],
			Docker: clients[name],
			Env: append(daemons[name].Env(),
				"SERVER_WORKER_THREADS=4",
				"SERVER_QUEUE_SIZE=8",
				"SERVER_REAP_INTERVAL=1",
				"DOCKER_UNIX_SOCKET_READ_TIMEOUT=5",
				"RUN_ALLOWED_IMAGES="+python,
				"LOG_LEVEL=info",
			),
		})
	}
	servers := map[string]*testenv.Server{"a": start("a"), "b": start("b")}
	lb := testenv.FreeAddr(t)
	startHAProxy(t, fmt.Sprintf(haproxyConfig, lb, addrs["a"], addrs["b"]))

	// The load: a fixed number of runs from a few clients, each sending
	// its next run when the last one is answered. Clients never retry.
	const (
		clientsN = 4
		total    = 300
	)
	body, _ := json.Marshal(map[string]any{"image": python, "payload": map[string]any{
		"language": "python", "files": []map[string]string{{"name": "main.py", "content": "import time\ntime.sleep(0.1)\nprint(42)"}},
	}})
	httpc := &http.Client{Timeout: 60 * time.Second}
	send := func() outcome {
		o := outcome{start: time.Now()}
		req, _ := http.NewRequest(http.MethodPost, "http://"+lb+"/run", bytes.NewReader(body))
		req.Header.Set("X-Access-Token", token)
		resp, err := httpc.Do(req)
		if err != nil {
			o.end, o.code = time.Now(), err.Error()
			return o
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		o.end, o.status, o.server = time.Now(), resp.StatusCode, resp.Header.Get("X-Served-By")
		if o.status != http.StatusOK {
			var e struct{ Error string }
			if json.Unmarshal(b, &e) == nil && e.Error != "" {
				o.code = e.Error
			} else {
				o.code = "not an error object: the balancer's own answer"
			}
		} else if !bytes.Contains(b, []byte(`"stdout":"42\n"`)) {
			o.status, o.code = -1, "unexpected answer: "+string(b)
		}
		return o
	}

	// Both servers must be in rotation before the batch starts.
	seen := map[string]bool{}
	deadline := time.Now().Add(time.Minute)
	for !seen["a"] || !seen["b"] {
		if o := send(); o.ok() {
			seen[o.server] = true
		}
		if time.Now().After(deadline) {
			t.Fatalf("the balancer did not send runs to both servers within a minute: %v", seen)
		}
	}

	var (
		mu       sync.Mutex
		outcomes []outcome
		next     atomic.Int64
		wg       sync.WaitGroup
	)
	done := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(outcomes)
	}
	for range clientsN {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= total {
				o := send()
				mu.Lock()
				outcomes = append(outcomes, o)
				mu.Unlock()
			}
		}()
	}
	// The scenario, step by step as the batch goes on: each step waits for
	// n more answers.
	waitMore := func(n int) {
		t.Helper()
		want := done() + n
		if want >= total {
			t.Fatalf("the batch of %d runs is too small for the scenario", total)
		}
		deadline := time.Now().Add(3 * time.Minute)
		for done() < want {
			if time.Now().After(deadline) {
				t.Fatalf("only %d of %d runs answered within 3 minutes", done(), want)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	type event struct {
		name string
		at   time.Time
	}
	var events []event
	mark := func(name string) { events = append(events, event{name, time.Now()}) }

	waitMore(40)
	mark("kill server a")
	servers["a"].Kill()
	killedLeft := len(testenv.ContainersOn(t, clients["a"], dockerrun.LabelOwner, owners["a"]))
	waitMore(40)
	mark("start server a")
	servers["a"] = start("a") // the same owner: it reaps what the killed one left
	waitMore(40)
	mark("stop daemon b")
	daemons["b"].Stop(t)
	mark("daemon b stopped")
	waitMore(40)
	mark("start daemon b")
	daemons["b"].Start(t)
	mark("daemon b started")
	wg.Wait()
	mark("end")

	// Report.
	at := func(name string) time.Time {
		for _, e := range events {
			if e.name == name {
				return e.at
			}
		}
		t.Fatalf("no event %q", name)
		return time.Time{}
	}
	phases := []struct {
		name     string
		from, to time.Time
		up       string // the node that must take every successful run, "" for both
	}{
		{"both nodes", outcomes[0].start, at("kill server a"), ""},
		{"server a killed", at("kill server a"), at("start server a"), "b"},
		{"server a back", at("start server a"), at("stop daemon b"), ""},
		{"daemon b stopping", at("stop daemon b"), at("daemon b stopped"), ""},
		{"daemon b stopped", at("daemon b stopped"), at("daemon b started"), "a"},
		{"daemon b back", at("daemon b started"), at("end"), ""},
	}
	sort.Slice(outcomes, func(i, j int) bool { return outcomes[i].start.Before(outcomes[j].start) })
	var failed []outcome
	for _, p := range phases {
		served := map[string]int{}
		failures := map[string]int{}
		for _, o := range outcomes {
			if o.start.Before(p.from) || !o.start.Before(p.to) {
				continue
			}
			if o.ok() {
				served[o.server]++
				// A run sent once the node is lost (killed, or its
				// daemon stopped) can only succeed on the other node.
				if p.up != "" && o.server != p.up {
					t.Errorf("%s: a run started %v into the phase was served by %s, want %s", p.name, o.start.Sub(p.from).Round(time.Millisecond), o.server, p.up)
				}
				continue
			}
			failures[fmt.Sprintf("%d %s (via %q)", o.status, o.code, o.server)]++
			failed = append(failed, o)
		}
		t.Logf("%-17s %6v: served a=%d b=%d; failed %v", p.name, p.to.Sub(p.from).Round(100*time.Millisecond), served["a"], served["b"], failures)
		if p.up != "" && served[p.up] < 5 {
			t.Errorf("%s: %s served %d runs, want the balancer to move the traffic there", p.name, p.up, served[p.up])
		}
		if (p.name == "server a back" || p.name == "daemon b back") && (served["a"] == 0 || served["b"] == 0) {
			t.Errorf("%s: served a=%d b=%d, want both nodes back in rotation", p.name, served["a"], served["b"])
		}
	}
	if len(outcomes) != total {
		t.Errorf("%d outcomes, want %d", len(outcomes), total)
	}
	t.Logf("%d of %d runs failed; %d containers of the killed server were on daemon a when it died", len(failed), len(outcomes), killedLeft)
	// The kill loses at most the runs in flight on a; the daemon's stop
	// those in flight on b and those that reached b before it was taken
	// out (three 5xx answers, or two failed checks).
	if limit := 2*clientsN + 3 + 2*clientsN; len(failed) > limit {
		t.Errorf("%d runs failed, want at most %d", len(failed), limit)
	}
	for _, o := range failed {
		if o.start.After(at("kill server a").Add(3*time.Second)) && o.start.Before(at("start server a")) {
			t.Errorf("a run started %v after the kill failed: %d %s", o.start.Sub(at("kill server a")).Round(time.Millisecond), o.status, o.code)
		}
		if o.start.After(at("daemon b stopped").Add(3*time.Second)) && o.start.Before(at("start daemon b")) {
			t.Errorf("a run started %v after daemon b stopped failed: %d %s", o.start.Sub(at("daemon b stopped")).Round(time.Millisecond), o.status, o.code)
		}
	}

	// Nothing is left on either daemon, with the servers still running:
	// the failed runs' containers were removed or reaped (the killed
	// server's by its successor, those of daemon b's stop by server b once
	// it was back), and nothing went to the shared daemon.
	for name, c := range clients {
		testenv.WaitContainersOn(t, c, dockerrun.LabelOwner, owners[name], time.Minute, "no container left on daemon "+name,
			func(list []container.Summary) bool { return len(list) == 0 })
	}
	for _, owner := range owners {
		if list := testenv.ContainersOn(t, testenv.Docker(t), dockerrun.LabelOwner, owner); len(list) > 0 {
			t.Errorf("%d containers of %s on the shared daemon", len(list), owner)
		}
	}
}

// TestScalingDocShowsFleetConfig checks that docs/scaling.md shows the
// HAProxy configuration that TestFleet runs, with example addresses.
func TestScalingDocShowsFleetConfig(t *testing.T) {
	doc, err := os.ReadFile("../docs/scaling.md")
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf(haproxyConfig, "127.0.0.1:8080", "10.0.0.1:8088", "10.0.0.2:8088")
	if !strings.Contains(string(doc), "```\n"+want+"```\n") {
		t.Errorf("docs/scaling.md does not show the tested HAProxy configuration; want this block:\n%s", want)
	}
}
