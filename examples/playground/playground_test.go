package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/image"
	"github.com/dockerrun/dockerrun"
	"github.com/dockerrun/dockerrun/examples/images/hello"
	"github.com/google/go-cmp/cmp"
)

// fakeRunner answers every run with the result or the error it was given
// and records what it was asked.
type fakeRunner struct {
	mu      sync.Mutex
	res     *dockerrun.Result
	err     error
	image   string
	payload string
}

func (f *fakeRunner) set(res *dockerrun.Result, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.res, f.err = res, err
}

func (f *fakeRunner) Run(ctx context.Context, image string, payload any) (*dockerrun.Result, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	raw, err := json.Marshal(payload)
	if err != nil {
		return nil, err
	}
	f.image, f.payload = image, string(raw)
	if f.err != nil {
		return nil, f.err
	}
	return f.res, nil
}

// fakeImages lists the images it holds, whatever the filter: discover must
// check the label itself.
type fakeImages []image.Summary

func (f fakeImages) ImageList(ctx context.Context, options image.ListOptions) ([]image.Summary, error) {
	return f, nil
}

func TestDiscover(t *testing.T) {
	hellos, err := hello.All()
	if err != nil {
		t.Fatal(err)
	}
	img := func(label string, tags ...string) image.Summary {
		s := image.Summary{RepoTags: tags}
		if label != "" {
			s.Labels = map[string]string{labelLanguage: label}
		}
		return s
	}
	images := fakeImages{
		img("python", "pre/python:latest", "pre/python:old"),
		img("c", "pre/c:latest"),
		img("bash", "pre/rootfs-bash:0123abcd"),   // the build's root file system
		img("bash", "other/bash:latest"),          // another prefix
		img("python", "pre/bash:latest"),          // the label says python
		img("", "pre/ruby:latest"),                // no label (glot's images)
		img("cobol", "pre/cobol:latest"),          // no hello world
		img("haskell", "pre/haskell:latest-beta"), // not :latest
	}
	langs, err := discover(context.Background(), images, "pre", hellos)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, l := range langs {
		got = append(got, l.Name+"="+l.Image)
		if !strings.Contains(string(l.Hello), `"files"`) {
			t.Errorf("%s: hello payload %s has no files", l.Name, l.Hello)
		}
	}
	want := []string{"c=pre/c:latest", "python=pre/python:latest"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("discover() mismatch (-want +got):\n%s", diff)
	}
}

func TestRun(t *testing.T) {
	langs := []language{
		{Name: "python", Image: "pre/python:latest", Hello: json.RawMessage(`{}`)},
		{Name: "c", Image: "pre/c:latest", Hello: json.RawMessage(`{}`)},
	}
	answer := `{"stdout":"42\n","stderr":"","error":"","duration":1234,"usage":{"cpu_time":1,"memory":2}}`
	ok := &dockerrun.Result{Stdout: "42\n", Raw: json.RawMessage(answer)}
	python := `{"language":"python","files":[{"name":"main.py","content":"print(42)"}],"stdin":""}`
	tests := []struct {
		name        string
		body        string
		err         error  // the runner's
		status      int    // the server's for the same error
		want        string // the whole answer, or the error code
		wantImage   string // the image run, if any
		wantPayload string // the payload it got
		crossSite   bool   // sent by a browser from another site
	}{
		{name: "ok", body: python, status: 200, want: answer, wantImage: "pre/python:latest",
			wantPayload: `{"language":"python","files":[{"name":"main.py","content":"print(42)"}]}`},
		{name: "runs", body: `{"language":"c","files":[],"runs":[{"stdin":"1"},{"stdin":"2"}]}`, status: 200, want: answer, wantImage: "pre/c:latest",
			wantPayload: `{"language":"c","files":[],"runs":[{"stdin":"1"},{"stdin":"2"}]}`},
		{name: "an image named", body: `{"language":"python","files":[],"image":"alpine:latest"}`, status: 200, want: answer, wantImage: "pre/python:latest",
			wantPayload: `{"language":"python","files":[]}`},
		{name: "other fields dropped", body: `{"language":"python","files":[],"limits":{"execution_time":99},"x":[[[[[1]]]]]}`, status: 200, want: answer, wantImage: "pre/python:latest",
			wantPayload: `{"language":"python","files":[]}`},
		{name: "from another site", body: python, crossSite: true, status: 403},
		{name: "unknown language", body: `{"language":"cobol"}`, status: 400, want: "image.not_allowed"},
		{name: "no language", body: `{"files":[]}`, status: 400, want: "image.not_allowed"},
		{name: "not JSON", body: `print(42)`, status: 400, want: "request.parse"},
		{name: "an array", body: `[{"language":"python"}]`, status: 400, want: "request.parse"},
		{name: "files not a list", body: `{"language":"python","files":"main.py"}`, status: 400, want: "request.parse"},
		{name: "too large", body: `{"language":"python","stdin":"` + strings.Repeat("x", maxBodyBytes) + `"}`, status: 413, want: "request.too_large"},
		{name: "busy", body: python, err: &dockerrun.Error{Code: dockerrun.CodeBusy, Message: "all places are taken"}, status: 503, want: "runner.busy", wantImage: "pre/python:latest"},
		{name: "time limit", body: python, err: &dockerrun.Error{Code: dockerrun.CodeExecutionTime, Message: "the run took longer than 10s"}, status: 400, want: "limits.execution_time", wantImage: "pre/python:latest"},
		{name: "image missing", body: python, err: &dockerrun.Error{Code: dockerrun.CodeContainerCreate, Message: "create container"}, status: 400, want: "docker.container.create", wantImage: "pre/python:latest"},
		{name: "daemon down", body: python, err: &dockerrun.Error{Code: dockerrun.CodeDockerUnixSocket, Message: "no daemon"}, status: 500, want: "docker.unixsocket", wantImage: "pre/python:latest"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := &fakeRunner{}
			fake.set(ok, tt.err)
			h, err := newHandler(config{Run: fake.Run, Languages: langs, TimeLimit: time.Second})
			if err != nil {
				t.Fatal(err)
			}
			rec := httptest.NewRecorder()
			req := httptest.NewRequest("POST", "/run", strings.NewReader(tt.body))
			if tt.crossSite {
				req.Header.Set("Sec-Fetch-Site", "cross-site")
			}
			h.ServeHTTP(rec, req)
			if rec.Code != tt.status {
				t.Errorf("status %d, want %d (body %s)", rec.Code, tt.status, rec.Body)
			}
			if tt.crossSite {
				if fake.image != "" {
					t.Errorf("a request from another site ran %s", fake.image)
				}
				return
			}
			if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q", ct)
			}
			got := strings.TrimSpace(rec.Body.String())
			if tt.status != http.StatusOK {
				var e struct{ Error, Message string }
				if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Message == "" {
					t.Fatalf("error answer %s is not {error, message}: %v", got, err)
				}
				got = e.Error
			}
			if got != tt.want {
				t.Errorf("answer %s, want %s", got, tt.want)
			}
			if fake.image != tt.wantImage {
				t.Errorf("ran image %q, want %q", fake.image, tt.wantImage)
			}
			if tt.wantPayload != "" && fake.payload != tt.wantPayload {
				t.Errorf("the runner got the payload %s, want %s", fake.payload, tt.wantPayload)
			}
		})
	}
}

func TestPage(t *testing.T) {
	hellos, err := hello.All()
	if err != nil {
		t.Fatal(err)
	}
	langs := []language{{Name: "bash", Image: "pre/bash:latest", Hello: hellos[0].Payload}, {Name: "c", Image: "pre/c:latest", Hello: hellos[1].Payload}}
	h, err := newHandler(config{Run: (&fakeRunner{}).Run, Languages: langs, TimeLimit: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	get := func(path string) (int, string, string) {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, resp.Header.Get("Content-Type"), string(body)
	}

	status, ct, body := get("/")
	if status != 200 || !strings.HasPrefix(ct, "text/html") {
		t.Fatalf("GET /: %d %s", status, ct)
	}
	for _, want := range []string{
		`<option value="bash">bash</option>`,
		`<option value="c">c</option>`,
		`"name":"c","hello":{`, // the hello worlds, as JSON for the script
		`killed after 10s`,     // the time limit
		`int main(void)`,       // c's hello world
		`\u003cstdio.h\u003e`,  // escaped in the script element
		`src="static/app.js"`,  // relative: the page works under a path prefix
		`href="static/style.css"`,
		`"Execution time limit exceeded:":"limits.execution_time"`, // how the agent reports a limit
	} {
		if !strings.Contains(body, want) {
			t.Errorf("GET / has no %s", want)
		}
	}
	if strings.Contains(body, "pre/bash:latest") {
		t.Error("GET / shows an image name: the page deals in languages only")
	}
	for path, want := range map[string]string{"/static/app.js": "text/javascript", "/static/style.css": "text/css"} {
		if status, ct, _ := get(path); status != 200 || !strings.HasPrefix(ct, want) {
			t.Errorf("GET %s: %d %s, want 200 %s", path, status, ct, want)
		}
	}
	resp, err := http.Get(srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := resp.Header.Get("Content-Security-Policy"); !strings.Contains(got, "default-src 'self'") {
		t.Errorf("Content-Security-Policy %q", got)
	}
	if status, _, _ := get("/static/nope.js"); status != 404 {
		t.Errorf("GET /static/nope.js: %d, want 404", status)
	}
}
