package adversarial

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/filters"
	"github.com/dockerrun/dockerrun/internal/testenv"
)

// runBody is a POST /run body for a normal python run on image.
func runBody(image string) []byte {
	b, _ := json.Marshal(map[string]any{
		"image": image,
		"payload": map[string]any{
			"language": "python",
			"files":    []map[string]string{{"name": "main.py", "content": `print("ok")`}},
		},
	})
	return b
}

// fast fails the test unless r came back within two seconds: the server
// refused without starting anything.
func fast(t *testing.T, r response) {
	t.Helper()
	within(t, r, 0, 2*time.Second)
}

func TestAPIAbuse(t *testing.T) {
	eachRuntime(t, func(t *testing.T, rt string) {
		tg := start(t, rt)
		ctx := context.Background()

		t.Run("token", func(t *testing.T) {
			var last response
			for _, tt := range []struct {
				method, path string
				token        string
			}{
				{http.MethodPost, "/run", ""},
				{http.MethodPost, "/run", "wrong"},
				{http.MethodPost, "/run", tg.Token + "x"},
				{http.MethodPost, "/run", strings.ToLower(tg.Token)}, // rand.Text: upper case
				{http.MethodGet, "/version", ""},
				{http.MethodGet, "/version", "wrong"},
			} {
				hdr := map[string]string{"X-Access-Token": tt.token}
				r, err := tg.do(ctx, tt.method, tt.path, runBody(pythonImage), hdr)
				if err != nil {
					t.Fatal(err)
				}
				if r.status != http.StatusUnauthorized || r.code != "access_token" || r.message != "Missing or wrong access token" {
					t.Errorf("%s %s with token %q: %s; want 401 access_token", tt.method, tt.path, tt.token, r.detail())
				}
				fast(t, r)
				last = r
			}
			if n := len(containersOf(t, tg)); n > 0 {
				t.Errorf("%d containers exist after unauthorized requests", n)
			}
			record(t, "api-token", rt, last.String()+" for each, docker-run's message; no container")
		})

		t.Run("huge body", func(t *testing.T) {
			// Valid JSON, one byte over the default 8 MiB.
			prefix := []byte(`{"image":"` + pythonImage + `","payload":{"language":"python","files":[{"name":"main.py","content":"`)
			suffix := []byte(`"}]}}`)
			body := bytes.Repeat([]byte("#"), 8<<20+1-len(prefix)-len(suffix))
			body = append(append(prefix, body...), suffix...)
			r, err := tg.do(ctx, http.MethodPost, "/run", body, nil)
			if err != nil {
				t.Fatal(err)
			}
			expect(t, r, http.StatusRequestEntityTooLarge, "request.too_large")
			within(t, r, 0, 5*time.Second)
			record(t, "api-huge-body", rt, r.String())
		})

		t.Run("nested", func(t *testing.T) {
			const depth = 100_000
			body := `{"image":"` + pythonImage + `","payload":{"x":` + strings.Repeat("[", depth) + strings.Repeat("]", depth) + `}}`
			r, err := tg.do(ctx, http.MethodPost, "/run", []byte(body), nil)
			if err != nil {
				t.Fatal(err)
			}
			expect(t, r, http.StatusBadRequest, "request.invalid")
			fast(t, r)
			record(t, "api-nested-json", rt, r.String()+"; "+clip(r.message, 60))
		})

		t.Run("wrong types", func(t *testing.T) {
			for _, tt := range []struct {
				body, code string
			}{
				{`not json`, "request.parse"},
				{`{"image": 5, "payload": {}}`, "request.parse"},
				{`{"image": ["` + pythonImage + `"], "payload": {}}`, "request.parse"},
				{`{"image": "` + pythonImage + `", "payload": "print(1)"}`, "request.invalid"},
				{`{"image": "` + pythonImage + `", "payload": [1, 2]}`, "request.invalid"},
				{`{"image": "` + pythonImage + `"}`, "request.invalid"},
				{`{"payload": {}}`, "request.invalid"},
				{`{"image": "` + pythonImage + `", "payload": {}} {"image": "x"}`, "request.parse"},
				{`[]`, "request.parse"},
			} {
				r, err := tg.do(ctx, http.MethodPost, "/run", []byte(tt.body), nil)
				if err != nil {
					t.Fatal(err)
				}
				if r.status != http.StatusBadRequest || r.code != tt.code {
					t.Errorf("body %s: %s; want 400 %s", tt.body, r.detail(), tt.code)
				}
				fast(t, r)
			}
			if n := len(containersOf(t, tg)); n > 0 {
				t.Errorf("%d containers exist after bad requests", n)
			}
			record(t, "api-wrong-types", rt, "400 `request.parse` (not JSON, wrong type, two values) or `request.invalid` (payload not an object, field missing), under 2 s; no container")
		})

		t.Run("registry host", func(t *testing.T) {
			since := time.Now()
			var last response
			for _, image := range []string{
				"docker.io/library/busybox:latest",
				"localhost:5000/dockerrun/python:latest",
				"localhost/dockerrun/python:latest",
				"127.0.0.1:5000/python",
				"registry.example.com/python:3",
				"ghcr.io/someone/image:latest",
			} {
				r, err := tg.do(ctx, http.MethodPost, "/run", runBody(image), nil)
				if err != nil {
					t.Fatal(err)
				}
				if r.status != http.StatusBadRequest || r.code != "image.not_allowed" {
					t.Errorf("image %s: %s; want 400 image.not_allowed", image, r.detail())
				}
				fast(t, r)
				last = r
			}
			noPulls(t, since)
			record(t, "api-registry-host", rt, last.String()+" for each, with no allow-list configured; the daemon saw no pull")
		})

		t.Run("absent image", func(t *testing.T) {
			since := time.Now()
			r, err := tg.do(ctx, http.MethodPost, "/run", runBody("busybox:latest"), nil)
			if err != nil {
				t.Fatal(err)
			}
			expect(t, r, http.StatusBadRequest, "docker.container.create")
			within(t, r, 0, 5*time.Second)
			noPulls(t, since)
			record(t, "api-image-absent", rt, r.String()+"; the daemon saw no pull")
		})
	})
}

// noPulls fails the test if the daemon pulled an image since then.
func noPulls(t *testing.T, since time.Time) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	msgs, errs := testenv.Docker(t).Events(ctx, events.ListOptions{
		Since:   fmt.Sprint(since.Add(-time.Second).Unix()),
		Until:   fmt.Sprint(time.Now().Add(time.Second).Unix()),
		Filters: filters.NewArgs(filters.Arg("type", "image")),
	})
	for {
		select {
		case m := <-msgs:
			if m.Action == "pull" {
				t.Errorf("the daemon pulled %s", m.Actor.ID)
			}
		case err := <-errs:
			if err != nil && !errors.Is(err, io.EOF) {
				t.Fatalf("docker events: %v", err)
			}
			return
		}
	}
}

func TestAllowList(t *testing.T) {
	eachRuntime(t, func(t *testing.T, rt string) {
		tg := start(t, rt, "RUN_ALLOWED_IMAGES="+pythonImage)
		ctx := context.Background()
		// The bash image is on the daemon, but not allowed.
		r, err := tg.do(ctx, http.MethodPost, "/run", runBody(bashImage), nil)
		if err != nil {
			t.Fatal(err)
		}
		expect(t, r, http.StatusBadRequest, "image.not_allowed")
		fast(t, r)
		// The implied tag matches.
		ok, err := tg.do(ctx, http.MethodPost, "/run", runBody(strings.TrimSuffix(pythonImage, ":latest")), nil)
		if err != nil {
			t.Fatal(err)
		}
		if ok.status != http.StatusOK || ok.stdout != "ok\n" {
			t.Fatalf("python image (allowed with :latest implied): %s", ok.detail())
		}
		record(t, "api-image-not-allowed", rt, r.String()+"; no container created")
	})
}

// Ten times the concurrency limit at once: a place for two, a queue for
// two, 503 runner.busy with Retry-After for the rest, and never more than
// two containers. It runs before the parallel attacks, so that its timing
// is its own.
func TestOverload(t *testing.T) {
	eachRuntimeAlone(t, func(t *testing.T, rt string) {
		const workers, queue, clients = 2, 2, 20
		tg := start(t, rt,
			fmt.Sprint("SERVER_WORKER_THREADS=", workers),
			fmt.Sprint("SERVER_QUEUE_SIZE=", queue),
			"SERVER_QUEUE_TIMEOUT=60")

		cli := testenv.Docker(t)
		sampling, stopSampling := context.WithCancel(context.Background())
		most := make(chan int, 1)
		go func() {
			n := 0
			for sampling.Err() == nil {
				list, err := cli.ContainerList(sampling, container.ListOptions{
					All:     true,
					Filters: filters.NewArgs(filters.Arg("label", ownerLabel+"="+tg.Owner)),
				})
				if err != nil && sampling.Err() == nil {
					t.Errorf("list containers: %v", err)
				}
				n = max(n, len(list))
				time.Sleep(20 * time.Millisecond)
			}
			most <- n
		}()

		answers := make([]<-chan response, clients)
		for i := range answers {
			answers[i] = tg.goPython("import time\ntime.sleep(2)\nprint(\"ok\")\n")
		}
		results := make([]response, clients)
		for i, ch := range answers {
			results[i] = <-ch
		}
		stopSampling()
		maxContainers := <-most

		ok, busy := 0, 0
		var slowest, slowestBusy time.Duration
		for _, r := range results {
			switch {
			case r.status == http.StatusOK && r.stdout == "ok\n":
				ok++
				slowest = max(slowest, r.took)
			case r.status == http.StatusServiceUnavailable && r.code == "runner.busy":
				busy++
				slowestBusy = max(slowestBusy, r.took)
				if r.header.Get("Retry-After") == "" {
					t.Errorf("503 without Retry-After: %s", r.detail())
				}
			default:
				t.Errorf("unexpected answer: %s", r.detail())
			}
		}
		if ok != workers+queue || busy != clients-workers-queue {
			t.Errorf("%d succeeded and %d were busy; want %d and %d", ok, busy, workers+queue, clients-workers-queue)
		}
		if slowestBusy > 2*time.Second {
			t.Errorf("a busy answer took %v; want it at once", slowestBusy)
		}
		if maxContainers > workers {
			t.Errorf("%d containers at once; want at most SERVER_WORKER_THREADS=%d", maxContainers, workers)
		}
		if maxContainers == 0 {
			t.Errorf("never saw a container: the sampling is broken")
		}
		record(t, "api-overload", rt, fmt.Sprintf("%d × 200 (the last after %.1f s), %d × 503 `runner.busy` with Retry-After, each within %.1f s; at most %d containers at once",
			ok, slowest.Seconds(), busy, slowestBusy.Seconds(), maxContainers))
	})
}

// A client that goes away gets its container killed and removed at once,
// not at the time limit.
func TestClientDisconnect(t *testing.T) {
	eachRuntime(t, func(t *testing.T, rt string) {
		// A time limit of a minute, so that only the disconnect can explain
		// a container gone within seconds.
		tg := start(t, rt, "RUN_MAX_EXECUTION_TIME=60")
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() {
			body, _ := json.Marshal(map[string]any{"image": pythonImage, "payload": map[string]any{
				"language": "python",
				"files":    []map[string]string{{"name": "main.py", "content": "import time\ntime.sleep(3600)\n"}},
			}})
			_, err := tg.do(ctx, http.MethodPost, "/run", body, nil)
			done <- err
		}()
		tg.waitRunning(30 * time.Second)
		time.Sleep(time.Second)
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Fatalf("request: %v; want it cancelled", err)
		}
		gone := waitGone(t, tg, 15*time.Second)
		if !strings.Contains(tg.Logs(), `"code":"run.canceled"`) {
			t.Errorf("the server did not log run.canceled:\n%s", tg.Logs())
		}
		record(t, "api-client-disconnect", rt, fmt.Sprintf("container gone %.1f s after the client left; logged as 499 `run.canceled`", gone.Seconds()))
	})
}

// Slow clients are cut by the server's ReadHeaderTimeout (5 s) while it
// keeps serving others.
func TestSlowloris(t *testing.T) {
	eachRuntime(t, func(t *testing.T, rt string) {
		tg := start(t, rt)
		const conns = 20
		addr := strings.TrimPrefix(tg.URL, "http://")
		var wg sync.WaitGroup
		cut := make([]time.Duration, conns)
		for i := range cut {
			wg.Go(func() {
				cut[i] = slowClient(t, addr, 300*time.Millisecond, 20*time.Second)
			})
		}
		time.Sleep(time.Second)
		r := tg.python(context.Background(), `print("ok")`)
		if r.status != http.StatusOK || r.stdout != "ok\n" {
			t.Errorf("a normal run during the attack: %s", r.detail())
		}
		wg.Wait()
		var slowest time.Duration
		for i, d := range cut {
			if d < 4*time.Second || d > 10*time.Second {
				t.Errorf("slow connection %d cut after %v; want about 5 s (ReadHeaderTimeout)", i, d)
			}
			slowest = max(slowest, d)
		}
		record(t, "api-slowloris", rt, fmt.Sprintf("each connection closed by the server within %.1f s (ReadHeaderTimeout 5 s); a run during the attack: %v", slowest.Seconds(), r))
	})
}

// slowClient sends a request's headers one byte every interval until the
// server closes the connection, and returns how long that took.
func slowClient(t *testing.T, addr string, interval, limit time.Duration) time.Duration {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Errorf("dial: %v", err)
		return 0
	}
	defer c.Close()
	start := time.Now()
	closed := make(chan struct{})
	go func() {
		// The server either closes silently or answers 408; both end it.
		io.Copy(io.Discard, c)
		close(closed)
	}()
	headers := "POST /run HTTP/1.1\r\nHost: " + addr + "\r\nContent-Type: application/json\r\nX-Access-Token: " + strings.Repeat("z", 200)
	for i := 0; ; i++ {
		select {
		case <-closed:
			return time.Since(start)
		case <-time.After(interval):
		}
		if time.Since(start) > limit {
			t.Errorf("slow connection still open after %v", limit)
			return time.Since(start)
		}
		if _, err := c.Write([]byte{headers[i%len(headers)]}); err != nil {
			<-closed
			return time.Since(start)
		}
	}
}
