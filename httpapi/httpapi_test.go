package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/docker/docker/api/types"
	"github.com/google/go-cmp/cmp"

	"github.com/dockerrun/dockerrun"
	"github.com/dockerrun/dockerrun/httpapi"
)

// token is the access token of every handler under test. It must never
// show in a log.
const token = "s3cret-token-that-must-not-be-logged"

// fakeRunner is an [httpapi.Runner] whose methods are the given functions.
// A method without a function fails with an error the tests can spot.
type fakeRunner struct {
	run     func(ctx context.Context, image string, payload any) (*dockerrun.Result, error)
	version func(ctx context.Context) (types.Version, error)
	ping    func(ctx context.Context) error
	ready   func(ctx context.Context) error

	runs   atomic.Int64                     // calls of Run
	limits atomic.Pointer[dockerrun.Limits] // of the last call of Run
}

var errUnexpected = errors.New("fake runner: unexpected call")

func (f *fakeRunner) Run(ctx context.Context, image string, payload any, opts ...dockerrun.RunOption) (*dockerrun.Result, error) {
	f.runs.Add(1)
	l := dockerrun.LimitsOf(opts...)
	f.limits.Store(&l)
	if f.run == nil {
		return nil, errUnexpected
	}
	return f.run(ctx, image, payload)
}

func (f *fakeRunner) Version(ctx context.Context) (types.Version, error) {
	if f.version == nil {
		return types.Version{}, errUnexpected
	}
	return f.version(ctx)
}

func (f *fakeRunner) Ping(ctx context.Context) error {
	if f.ping == nil {
		return errUnexpected
	}
	return f.ping(ctx)
}

func (f *fakeRunner) Ready(ctx context.Context) error {
	if f.ready == nil {
		return errUnexpected
	}
	return f.ready(ctx)
}

// newHandler returns the API for f configured by cfg, with [token] unless
// cfg names another.
func newHandler(t *testing.T, f *fakeRunner, cfg httpapi.Config) http.Handler {
	t.Helper()
	cfg.Runner = f
	if cfg.AccessToken == "" {
		cfg.AccessToken = token
	}
	h, err := httpapi.New(cfg)
	if err != nil {
		t.Fatalf("New() error: %v", err)
	}
	return h
}

// serve sends one request to h, with tok in X-Access-Token unless tok is
// empty.
func serve(h http.Handler, method, path, tok, body string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	if tok != "" {
		req.Header.Set(httpapi.Header, tok)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// reply is the part of an error answer that tests compare.
type reply struct {
	Status int
	Code   string
}

// errorReply checks that rec holds an error answer, a JSON object with
// exactly the string fields "error" and "message", and returns its status
// and code.
func errorReply(t *testing.T, rec *httptest.ResponseRecorder) reply {
	t.Helper()
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
	var body map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Fatalf("error body %q is not a JSON object: %v", rec.Body, err)
	}
	var keys []string
	for k, v := range body {
		keys = append(keys, k)
		if s, ok := v.(string); !ok || s == "" {
			t.Errorf("error body %q: field %q is %#v, want a non-empty string", rec.Body, k, v)
		}
	}
	slices.Sort(keys)
	if diff := cmp.Diff([]string{"error", "message"}, keys); diff != "" {
		t.Errorf("error body %q: fields mismatch (-want +got):\n%s", rec.Body, diff)
	}
	code, _ := body["error"].(string)
	return reply{Status: rec.Code, Code: code}
}

func TestNewRefusesIncompleteConfig(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		cfg  httpapi.Config
	}{
		{name: "no runner", cfg: httpapi.Config{AccessToken: token}},
		{name: "no token", cfg: httpapi.Config{Runner: &fakeRunner{}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if h, err := httpapi.New(tt.cfg); err == nil {
				t.Errorf("New() = %v, nil; want an error", h)
			}
		})
	}
}

func TestRoot(t *testing.T) {
	t.Parallel()
	custom := httpapi.ServiceInfo{Name: "my-runner", Version: "1.2.3", Description: "runs code"}
	tests := []struct {
		name    string
		service httpapi.ServiceInfo
		want    httpapi.ServiceInfo
	}{
		{
			name: "default",
			want: httpapi.ServiceInfo{Name: "docker-run", Version: dockerrun.Version(), Description: "Api for running code in transient docker containers"},
		},
		{name: "custom", service: custom, want: custom},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := newHandler(t, &fakeRunner{}, httpapi.Config{Service: tt.service})
			rec := serve(h, http.MethodGet, "/", "", "") // no token needed
			if rec.Code != http.StatusOK {
				t.Fatalf("GET / status = %d, want 200; body %s", rec.Code, rec.Body)
			}
			var got httpapi.ServiceInfo
			if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
				t.Fatalf("GET / body %q: %v", rec.Body, err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("GET / mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// TestProbes checks GET /healthz (the daemon answers a ping) and GET
// /readyz (the runner can take a run now): 200, or 503 with the check's
// code and a Retry-After header.
func TestProbes(t *testing.T) {
	t.Parallel()
	daemonAway := &dockerrun.Error{Code: dockerrun.CodeDockerUnixSocket, Message: "no daemon"}
	tests := []struct {
		name        string
		path        string
		err         error
		wantStatus  int
		wantCode    string
		wantMessage string
	}{
		{name: "healthz: daemon answers", path: "/healthz", wantStatus: http.StatusOK},
		{name: "healthz: daemon away", path: "/healthz", err: daemonAway, wantStatus: http.StatusServiceUnavailable, wantCode: httpapi.CodeUnhealthy, wantMessage: "docker.unixsocket: no daemon"},
		{name: "healthz: other error", path: "/healthz", err: errors.New("boom"), wantStatus: http.StatusServiceUnavailable, wantCode: httpapi.CodeUnhealthy, wantMessage: "internal: internal error: the server's log has the details"},
		{name: "readyz: ready", path: "/readyz", wantStatus: http.StatusOK},
		{name: "readyz: daemon away", path: "/readyz", err: daemonAway, wantStatus: http.StatusServiceUnavailable, wantCode: httpapi.CodeNotReady, wantMessage: "docker.unixsocket: no daemon"},
		{name: "readyz: queue full", path: "/readyz", err: &dockerrun.Error{Code: dockerrun.CodeBusy, Message: "all 8 places are taken"}, wantStatus: http.StatusServiceUnavailable, wantCode: httpapi.CodeNotReady, wantMessage: "runner.busy: all 8 places are taken"},
		{name: "readyz: closed", path: "/readyz", err: &dockerrun.Error{Code: dockerrun.CodeClosed}, wantStatus: http.StatusServiceUnavailable, wantCode: httpapi.CodeNotReady, wantMessage: "runner.closed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var called atomic.Bool
			check := func(ctx context.Context) error {
				called.Store(true)
				if _, ok := ctx.Deadline(); !ok {
					t.Errorf("GET %s: the check's ctx has no deadline", tt.path)
				}
				return tt.err
			}
			f := &fakeRunner{}
			if tt.path == "/healthz" {
				f.ping = check
			} else {
				f.ready = check
			}
			rec := serve(newHandler(t, f, httpapi.Config{}), http.MethodGet, tt.path, "", "")
			if !called.Load() {
				t.Errorf("GET %s did not call its check", tt.path)
			}
			if tt.err == nil {
				if rec.Code != http.StatusOK {
					t.Fatalf("GET %s status = %d, want 200; body %s", tt.path, rec.Code, rec.Body)
				}
				return
			}
			if diff := cmp.Diff(reply{tt.wantStatus, tt.wantCode}, errorReply(t, rec)); diff != "" {
				t.Errorf("GET %s mismatch (-want +got):\n%s", tt.path, diff)
			}
			var body struct{ Message string }
			json.Unmarshal(rec.Body.Bytes(), &body)
			if body.Message != tt.wantMessage {
				t.Errorf("GET %s message = %q, want %q", tt.path, body.Message, tt.wantMessage)
			}
			if rec.Header().Get("Retry-After") == "" {
				t.Errorf("GET %s 503 has no Retry-After header", tt.path)
			}
		})
	}
}

func TestVersion(t *testing.T) {
	t.Parallel()
	daemon := types.Version{Version: "20.10.24", APIVersion: "1.41", Os: "linux", Arch: "amd64", GoVersion: "go1.19"}
	f := &fakeRunner{version: func(context.Context) (types.Version, error) { return daemon, nil }}
	h := newHandler(t, f, httpapi.Config{})

	t.Run("with token", func(t *testing.T) {
		t.Parallel()
		rec := serve(h, http.MethodGet, "/version", token, "")
		if rec.Code != http.StatusOK {
			t.Fatalf("GET /version status = %d, want 200; body %s", rec.Code, rec.Body)
		}
		var got map[string]types.Version
		if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
			t.Fatalf("GET /version body %q: %v", rec.Body, err)
		}
		if diff := cmp.Diff(map[string]types.Version{"docker": daemon}, got); diff != "" {
			t.Errorf("GET /version mismatch (-want +got):\n%s", diff)
		}
	})
	t.Run("without token", func(t *testing.T) {
		t.Parallel()
		rec := serve(h, http.MethodGet, "/version", "", "")
		if diff := cmp.Diff(reply{http.StatusUnauthorized, httpapi.CodeAccessToken}, errorReply(t, rec)); diff != "" {
			t.Errorf("GET /version mismatch (-want +got):\n%s", diff)
		}
	})
	t.Run("daemon away", func(t *testing.T) {
		t.Parallel()
		f := &fakeRunner{version: func(context.Context) (types.Version, error) {
			return types.Version{}, &dockerrun.Error{Code: dockerrun.CodeDockerUnixSocket, Message: "docker version"}
		}}
		rec := serve(newHandler(t, f, httpapi.Config{}), http.MethodGet, "/version", token, "")
		if diff := cmp.Diff(reply{http.StatusInternalServerError, string(dockerrun.CodeDockerUnixSocket)}, errorReply(t, rec)); diff != "" {
			t.Errorf("GET /version mismatch (-want +got):\n%s", diff)
		}
	})
}

// runCall is what the fake runner saw of one Run call.
type runCall struct {
	Image   string
	Payload string
	Type    string // the payload's Go type
}

func TestRunPassesThrough(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		image   string
		payload string // the payload exactly as it is in the body
		raw     string // the runner's answer
	}{
		{
			name:    "plain",
			image:   "dockerrun/python:latest",
			payload: `{"language":"python","files":[{"name":"main.py","content":"print(42)"}]}`,
			raw:     `{"stdout":"42\n","stderr":"","error":""}`,
		},
		{
			name:    "non-ASCII and odd spacing",
			image:   "glot/bash",
			payload: "{ \"text\" :\t\"h\u00e9llo w\u00f6rld \u2713 \u65e5\u672c\u8a9e \U0001F600\",\n  \"escaped\": \"\\u00e9\\n\\\"q\\\"\" ,\"n\":[1 ,2,  3.50]  }",
			raw:     "{\"stdout\": \"h\u00e9llo \u2713\",  \"stderr\":\"\" ,\"error\":\"\",\"duration\": 1234,\"extra\":[1,2]}",
		},
		{
			name:    "empty object",
			image:   "a",
			payload: `{}`,
			raw:     `{"stdout":"","stderr":"","error":"exit status 1"}`,
		},
		{
			name:    "brackets inside strings do not count as depth",
			image:   "a",
			payload: `{"s":"[[[[[[[[[[{{{{{{{{{{{{","t":"\"[[[[[[[[[[["}`,
			raw:     `{"stdout":"","stderr":"","error":""}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var calls []runCall
			f := &fakeRunner{run: func(_ context.Context, image string, payload any) (*dockerrun.Result, error) {
				c := runCall{Image: image, Type: fmt.Sprintf("%T", payload)}
				switch p := payload.(type) {
				case json.RawMessage:
					c.Payload = string(p)
				case []byte:
					c.Payload = string(p)
				}
				calls = append(calls, c)
				return &dockerrun.Result{Raw: json.RawMessage(tt.raw), Stdout: "ignored", Duration: time.Second}, nil
			}}
			// The deepest body above nests 4 levels (body, payload, files,
			// file), far fewer than the brackets inside strings.
			h := newHandler(t, f, httpapi.Config{MaxJSONDepth: 4})
			body := "{\"image\": " + quote(tt.image) + ", \"payload\": " + tt.payload + "}"
			rec := serve(h, http.MethodPost, "/run", token, body)

			want := []runCall{{Image: tt.image, Payload: tt.payload, Type: "json.RawMessage"}}
			if diff := cmp.Diff(want, calls); diff != "" {
				t.Errorf("Run() calls mismatch (-want +got):\n%s", diff)
			}
			if rec.Code != http.StatusOK {
				t.Errorf("POST /run status = %d, want 200", rec.Code)
			}
			if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
				t.Errorf("POST /run Content-Type = %q, want application/json", ct)
			}
			if diff := cmp.Diff(tt.raw, rec.Body.String()); diff != "" {
				t.Errorf("POST /run body mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// TestRunLimits checks that the request's "limits" reach the runner, and that
// malformed ones are refused with request.limits before any run.
func TestRunLimits(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		limits string // the "limits" member of the body, if any
		want   dockerrun.Limits
		// wantErr is a part of the error message; "" for a run.
		wantErr string
	}{
		{name: "none"},
		{name: "null", limits: `null`},
		{name: "empty", limits: `{}`},
		{name: "all", limits: `{"execution_time": 0.25, "output_size": 1000, "memory": 67108864}`,
			want: dockerrun.Limits{ExecutionTime: 250 * time.Millisecond, OutputSize: 1000, Memory: 64 << 20}},
		{name: "whole seconds", limits: `{"execution_time": 3}`, want: dockerrun.Limits{ExecutionTime: 3 * time.Second}},
		{name: "unknown field", limits: `{"time": 3}`, wantErr: `unknown field "time"`},
		{name: "string", limits: `{"execution_time": "3s"}`, wantErr: "want a number of seconds"},
		{name: "negative time", limits: `{"execution_time": -1}`, wantErr: "-1 seconds is out of range"},
		{name: "fractional size", limits: `{"output_size": 1.5}`, wantErr: "output_size"},
		{name: "not an object", limits: `[1]`, wantErr: `"limits" must be {"execution_time": seconds, "output_size": bytes, "memory": bytes}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := &fakeRunner{run: func(context.Context, string, any) (*dockerrun.Result, error) {
				return &dockerrun.Result{Raw: json.RawMessage(`{"stdout":"","stderr":"","error":""}`)}, nil
			}}
			body := `{"image":"a","payload":{}}`
			if tt.limits != "" {
				body = `{"image":"a","payload":{},"limits":` + tt.limits + `}`
			}
			rec := serve(newHandler(t, f, httpapi.Config{}), http.MethodPost, "/run", token, body)
			if tt.wantErr != "" {
				if diff := cmp.Diff(reply{400, "request.limits"}, errorReply(t, rec)); diff != "" {
					t.Errorf("POST /run mismatch (-want +got):\n%s", diff)
				}
				var got struct{ Message string }
				json.Unmarshal(rec.Body.Bytes(), &got)
				if !strings.Contains(got.Message, tt.wantErr) {
					t.Errorf("POST /run message = %q, want one with %q", got.Message, tt.wantErr)
				}
				if f.runs.Load() != 0 {
					t.Errorf("Run() was called for invalid limits")
				}
				return
			}
			if rec.Code != http.StatusOK {
				t.Fatalf("POST /run = %d %s, want 200", rec.Code, rec.Body)
			}
			if diff := cmp.Diff(&tt.want, f.limits.Load()); diff != "" {
				t.Errorf("Run() limits mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func quote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func TestAccessToken(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		header []string // values of X-Access-Token
	}{
		{name: "missing"},
		{name: "empty", header: []string{""}},
		{name: "wrong", header: []string{"wrong"}},
		{name: "prefix", header: []string{token[:len(token)-1]}},
		{name: "longer", header: []string{token + "x"}},
		{name: "other case", header: []string{strings.ToUpper(token)}},
		{name: "padded", header: []string{" " + token}},
		{name: "second value", header: []string{"wrong", token}},
	}
	routes := []struct{ method, path string }{
		{http.MethodGet, "/version"},
		{http.MethodPost, "/run"},
	}
	const want = `{"error":"access_token","message":"Missing or wrong access token"}`
	for _, tt := range tests {
		for _, rt := range routes {
			t.Run(tt.name+" "+rt.method+" "+rt.path, func(t *testing.T) {
				t.Parallel()
				f := &fakeRunner{
					run: func(context.Context, string, any) (*dockerrun.Result, error) {
						return &dockerrun.Result{Raw: json.RawMessage(`{}`)}, nil
					},
					version: func(context.Context) (types.Version, error) { return types.Version{}, nil },
				}
				h := newHandler(t, f, httpapi.Config{})
				req := httptest.NewRequest(rt.method, rt.path, strings.NewReader(`{"image":"a","payload":{}}`))
				for _, v := range tt.header {
					req.Header.Add(httpapi.Header, v)
				}
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				if rec.Code != http.StatusUnauthorized {
					t.Errorf("%s %s status = %d, want 401", rt.method, rt.path, rec.Code)
				}
				if diff := cmp.Diff(want, strings.TrimSpace(rec.Body.String())); diff != "" {
					t.Errorf("%s %s body mismatch (-want +got):\n%s", rt.method, rt.path, diff)
				}
				if n := f.runs.Load(); n != 0 {
					t.Errorf("Run() called %d times without a valid token", n)
				}
			})
		}
	}
}

func TestRunBadBody(t *testing.T) {
	t.Parallel()
	const maxBody = 512
	const maxDepth = 6
	// fit pads a valid body to exactly n bytes.
	fit := func(n int) string {
		const head, tail = `{"image":"a","payload":{"pad":"`, `"}}`
		return head + strings.Repeat("p", n-len(head)-len(tail)) + tail
	}
	// nested returns a body whose deepest nesting is depth.
	nested := func(depth int) string {
		return `{"image":"a","payload":` + strings.Repeat(`{"a":`, depth-1) + "1" + strings.Repeat("}", depth-1) + "}"
	}
	tests := []struct {
		name string
		body string
		want reply
	}{
		{name: "empty", body: "", want: reply{400, httpapi.CodeRequestParse}},
		{name: "not JSON", body: "image=a&payload=b", want: reply{400, httpapi.CodeRequestParse}},
		{name: "truncated", body: `{"image":"a","payload":{`, want: reply{400, httpapi.CodeRequestParse}},
		{name: "array", body: `[{"image":"a","payload":{}}]`, want: reply{400, httpapi.CodeRequestParse}},
		{name: "image a number", body: `{"image":42,"payload":{}}`, want: reply{400, httpapi.CodeRequestParse}},
		{name: "image an object", body: `{"image":{"name":"a"},"payload":{}}`, want: reply{400, httpapi.CodeRequestParse}},
		{name: "payload a string", body: `{"image":"a","payload":"{}"}`, want: reply{400, httpapi.CodeRequestInvalid}},
		{name: "payload an array", body: `{"image":"a","payload":[{}]}`, want: reply{400, httpapi.CodeRequestInvalid}},
		{name: "payload a number", body: `{"image":"a","payload":1}`, want: reply{400, httpapi.CodeRequestInvalid}},
		{name: "payload null", body: `{"image":"a","payload":null}`, want: reply{400, httpapi.CodeRequestInvalid}},
		{name: "payload missing", body: `{"image":"a"}`, want: reply{400, httpapi.CodeRequestInvalid}},
		{name: "image missing", body: `{"payload":{}}`, want: reply{400, httpapi.CodeRequestInvalid}},
		{name: "image empty", body: `{"image":"","payload":{}}`, want: reply{400, httpapi.CodeRequestInvalid}},
		{name: "image null", body: `{"image":null,"payload":{}}`, want: reply{400, httpapi.CodeRequestInvalid}},
		{name: "two objects", body: `{"image":"a","payload":{}} {"image":"b","payload":{}}`, want: reply{400, httpapi.CodeRequestParse}},
		{name: "trailing value", body: `{"image":"a","payload":{}}1`, want: reply{400, httpapi.CodeRequestParse}},
		{name: "trailing brace", body: `{"image":"a","payload":{}}}`, want: reply{400, httpapi.CodeRequestParse}},
		{name: "trailing bracket", body: `{"image":"a","payload":{}} ]`, want: reply{400, httpapi.CodeRequestParse}},
		{name: "one byte too large", body: fit(maxBody + 1), want: reply{413, httpapi.CodeRequestTooLarge}},
		{name: "much too large", body: fit(100 * maxBody), want: reply{413, httpapi.CodeRequestTooLarge}},
		{name: "one level too deep", body: nested(maxDepth + 1), want: reply{400, httpapi.CodeRequestInvalid}},
		{name: "much too deep", body: strings.Repeat("[", maxBody-1), want: reply{400, httpapi.CodeRequestInvalid}},
		// The limits themselves are fine.
		{name: "largest body", body: fit(maxBody), want: reply{200, ""}},
		{name: "deepest body", body: nested(maxDepth), want: reply{200, ""}},
		{name: "trailing space", body: `{"image":"a","payload":{}}` + " \r\n\t", want: reply{200, ""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := &fakeRunner{run: func(context.Context, string, any) (*dockerrun.Result, error) {
				return &dockerrun.Result{Raw: json.RawMessage(`{"stdout":"","stderr":"","error":""}`)}, nil
			}}
			h := newHandler(t, f, httpapi.Config{MaxBodyBytes: maxBody, MaxJSONDepth: maxDepth})
			rec := serve(h, http.MethodPost, "/run", token, tt.body)
			got := reply{Status: rec.Code}
			if rec.Code != http.StatusOK {
				got = errorReply(t, rec)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("POST /run %.60q mismatch (-want +got):\n%s", tt.body, diff)
			}
			wantRuns := int64(0)
			if tt.want.Status == http.StatusOK {
				wantRuns = 1
			}
			if n := f.runs.Load(); n != wantRuns {
				t.Errorf("Run() called %d times, want %d", n, wantRuns)
			}
		})
	}
}

func TestRoutes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		method, path string
		want         reply
		wantAllow    string
	}{
		{method: "GET", path: "/nope", want: reply{404, httpapi.CodeNotFound}},
		{method: "POST", path: "/nope", want: reply{404, httpapi.CodeNotFound}},
		{method: "POST", path: "/run/", want: reply{404, httpapi.CodeNotFound}},
		{method: "POST", path: "/run/x", want: reply{404, httpapi.CodeNotFound}},
		{method: "GET", path: "/version/x", want: reply{404, httpapi.CodeNotFound}},
		{method: "GET", path: "/run", want: reply{405, httpapi.CodeMethodNotAllowed}, wantAllow: "POST"},
		{method: "PUT", path: "/run", want: reply{405, httpapi.CodeMethodNotAllowed}, wantAllow: "POST"},
		{method: "HEAD", path: "/run", want: reply{405, ""}, wantAllow: "POST"}, // no body in a HEAD answer
		{method: "POST", path: "/version", want: reply{405, httpapi.CodeMethodNotAllowed}, wantAllow: "GET, HEAD"},
		{method: "DELETE", path: "/version", want: reply{405, httpapi.CodeMethodNotAllowed}, wantAllow: "GET, HEAD"},
		{method: "POST", path: "/", want: reply{405, httpapi.CodeMethodNotAllowed}, wantAllow: "GET, HEAD"},
		{method: "POST", path: "/healthz", want: reply{405, httpapi.CodeMethodNotAllowed}, wantAllow: "GET, HEAD"},
		{method: "POST", path: "/readyz", want: reply{405, httpapi.CodeMethodNotAllowed}, wantAllow: "GET, HEAD"},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			t.Parallel()
			f := &fakeRunner{}
			h := newHandler(t, f, httpapi.Config{})
			rec := serve(h, tt.method, tt.path, token, `{"image":"a","payload":{}}`)
			got := reply{Status: rec.Code}
			if tt.method != http.MethodHead {
				got = errorReply(t, rec)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("%s %s mismatch (-want +got):\n%s", tt.method, tt.path, diff)
			}
			if got := rec.Header().Get("Allow"); got != tt.wantAllow {
				t.Errorf("%s %s Allow = %q, want %q", tt.method, tt.path, got, tt.wantAllow)
			}
			if n := f.runs.Load(); n != 0 {
				t.Errorf("Run() called %d times", n)
			}
		})
	}
}

func TestRunErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		err            error
		want           reply
		wantMessage    string
		wantRetryAfter string
	}{
		{err: &dockerrun.Error{Code: dockerrun.CodeContainerCreate, Message: "no such image"}, want: reply{400, "docker.container.create"}, wantMessage: "no such image"},
		{err: &dockerrun.Error{Code: dockerrun.CodePayloadSerialize, Message: "m"}, want: reply{400, "docker.container.stream.payload.serialize"}, wantMessage: "m"},
		{err: &dockerrun.Error{Code: dockerrun.CodeExecutionTime, Message: "m"}, want: reply{400, "limits.execution_time"}, wantMessage: "m"},
		{err: &dockerrun.Error{Code: dockerrun.CodeOutputSize, Message: "m"}, want: reply{400, "limits.read.size"}, wantMessage: "m"},
		{err: &dockerrun.Error{Code: dockerrun.CodeMemory, Message: "m"}, want: reply{400, "limits.memory"}, wantMessage: "m"},
		{err: &dockerrun.Error{Code: dockerrun.CodeImageNotAllowed, Message: "m"}, want: reply{400, "image.not_allowed"}, wantMessage: "m"},
		{err: &dockerrun.Error{Code: dockerrun.CodeRequestLimits, Message: "m"}, want: reply{400, "request.limits"}, wantMessage: "m"},
		{err: &dockerrun.Error{Code: dockerrun.CodeDockerUnixSocket, Message: "m", Err: errors.New("dial unix: refused")}, want: reply{500, "docker.unixsocket"}, wantMessage: "m"},
		{err: &dockerrun.Error{Code: dockerrun.CodeContainerStart, Message: "m"}, want: reply{500, "docker.container.start"}, wantMessage: "m"},
		{err: &dockerrun.Error{Code: dockerrun.CodeContainerAttach, Message: "m"}, want: reply{500, "docker.container.attach"}, wantMessage: "m"},
		{err: &dockerrun.Error{Code: dockerrun.CodeStreamRead, Message: "m"}, want: reply{500, "docker.container.stream.read"}, wantMessage: "m"},
		{err: &dockerrun.Error{Code: dockerrun.CodeStdin, Message: "m"}, want: reply{500, "coderunner.stdin"}, wantMessage: "m"},
		{err: &dockerrun.Error{Code: dockerrun.CodeAgentStderr, Message: "m"}, want: reply{500, "coderunner.stderr"}, wantMessage: "m"},
		{err: &dockerrun.Error{Code: dockerrun.CodeStdoutDecode, Message: "m"}, want: reply{500, "coderunner.stdout.decode"}, wantMessage: "m"},
		{err: &dockerrun.Error{Code: dockerrun.CodeInvalidConfig, Message: "m"}, want: reply{500, "config.invalid"}, wantMessage: "m"},
		{err: &dockerrun.Error{Code: dockerrun.CodeBusy, Message: "m"}, want: reply{503, "runner.busy"}, wantMessage: "m", wantRetryAfter: "1"},
		{err: &dockerrun.Error{Code: dockerrun.CodeClosed, Message: "m"}, want: reply{503, "runner.closed"}, wantMessage: "m", wantRetryAfter: "1"},
		{err: &dockerrun.Error{Code: dockerrun.CodeCanceled, Message: "m"}, want: reply{499, "run.canceled"}, wantMessage: "m"},
		{err: &dockerrun.Error{Code: "some.future.code", Message: "m"}, want: reply{500, "some.future.code"}, wantMessage: "m"},
		{err: fmt.Errorf("wrapped: %w", &dockerrun.Error{Code: dockerrun.CodeExecutionTime, Message: "m"}), want: reply{400, "limits.execution_time"}, wantMessage: "m"},
		{err: errors.New("disk on fire"), want: reply{500, httpapi.CodeInternal}, wantMessage: "internal error: the server's log has the details"},
	}
	for _, tt := range tests {
		t.Run(tt.want.Code, func(t *testing.T) {
			t.Parallel()
			f := &fakeRunner{run: func(context.Context, string, any) (*dockerrun.Result, error) { return nil, tt.err }}
			rec := serve(newHandler(t, f, httpapi.Config{}), http.MethodPost, "/run", token, `{"image":"a","payload":{}}`)
			if diff := cmp.Diff(tt.want, errorReply(t, rec)); diff != "" {
				t.Errorf("POST /run mismatch (-want +got):\n%s", diff)
			}
			var body struct{ Message string }
			json.Unmarshal(rec.Body.Bytes(), &body)
			if body.Message != tt.wantMessage {
				t.Errorf("POST /run message = %q, want %q", body.Message, tt.wantMessage)
			}
			if got := rec.Header().Get("Retry-After"); got != tt.wantRetryAfter {
				t.Errorf("POST /run Retry-After = %q, want %q", got, tt.wantRetryAfter)
			}
			if code := dockerrun.ErrorCode(tt.err); code != "" {
				if got := httpapi.StatusOf(code); got != tt.want.Status {
					t.Errorf("StatusOf(%q) = %d, want %d", code, got, tt.want.Status)
				}
			}
		})
	}
}

func TestRetryAfter(t *testing.T) {
	t.Parallel()
	tests := []struct {
		retryAfter time.Duration
		want       string
	}{
		{0, "1"},
		{time.Millisecond, "1"},
		{2500 * time.Millisecond, "2"},
		{time.Minute, "60"},
	}
	for _, tt := range tests {
		t.Run(tt.retryAfter.String(), func(t *testing.T) {
			t.Parallel()
			f := &fakeRunner{run: func(context.Context, string, any) (*dockerrun.Result, error) {
				return nil, &dockerrun.Error{Code: dockerrun.CodeBusy, Message: "busy"}
			}}
			rec := serve(newHandler(t, f, httpapi.Config{RetryAfter: tt.retryAfter}), http.MethodPost, "/run", token, `{"image":"a","payload":{}}`)
			if got := rec.Header().Get("Retry-After"); got != tt.want {
				t.Errorf("Retry-After = %q, want %q", got, tt.want)
			}
		})
	}
}

// logLine is the part of a request's log line that tests compare.
type logLine struct {
	Level  string
	Msg    string
	Method string
	Path   string
	Status int
	Code   string
	Error  string
}

func TestRequestLog(t *testing.T) {
	t.Parallel()
	const secret = "payload-secret-\u00e9-never-logged"
	const wrongToken = "wrong-token-never-logged"
	const sleep = 20 * time.Millisecond
	var buf bytes.Buffer // written by the handler only, one request at a time
	f := &fakeRunner{
		run: func(_ context.Context, _ string, payload any) (*dockerrun.Result, error) {
			time.Sleep(sleep)
			if strings.Contains(string(payload.(json.RawMessage)), "fail") {
				return nil, &dockerrun.Error{Code: dockerrun.CodeStdoutDecode, Message: "bad answer", Err: errors.New("the daemon's words")}
			}
			return &dockerrun.Result{Raw: json.RawMessage(`{"stdout":"` + secret + `","stderr":"","error":""}`)}, nil
		},
		version: func(context.Context) (types.Version, error) { return types.Version{Version: "20.10"}, nil },
	}
	h := newHandler(t, f, httpapi.Config{Logger: slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))})

	tests := []struct {
		name         string
		method, path string
		tok          string
		body         string
		want         logLine
		minDuration  time.Duration
	}{
		{
			name: "run ok", method: "POST", path: "/run", tok: token,
			body:        `{"image":"a","payload":{"code":"` + secret + `"}}`,
			want:        logLine{Level: "INFO", Msg: "request", Method: "POST", Path: "/run", Status: 200},
			minDuration: sleep,
		},
		{
			name: "run fails", method: "POST", path: "/run", tok: token,
			body:        `{"image":"a","payload":{"code":"fail ` + secret + `"}}`,
			want:        logLine{Level: "ERROR", Msg: "request", Method: "POST", Path: "/run", Status: 500, Code: "coderunner.stdout.decode", Error: "coderunner.stdout.decode: bad answer: the daemon's words"},
			minDuration: sleep,
		},
		{
			name: "wrong token", method: "POST", path: "/run", tok: wrongToken,
			body: `{"image":"a","payload":{"code":"` + secret + `"}}`,
			want: logLine{Level: "INFO", Msg: "request", Method: "POST", Path: "/run", Status: 401, Code: httpapi.CodeAccessToken},
		},
		{
			name: "bad body", method: "POST", path: "/run", tok: token,
			body: `{"image":"a","payload":"` + secret + `"}`,
			want: logLine{Level: "INFO", Msg: "request", Method: "POST", Path: "/run", Status: 400, Code: httpapi.CodeRequestInvalid},
		},
		{
			name: "version", method: "GET", path: "/version", tok: token,
			want: logLine{Level: "INFO", Msg: "request", Method: "GET", Path: "/version", Status: 200},
		},
		{
			name: "not found", method: "GET", path: "/nope",
			want: logLine{Level: "INFO", Msg: "request", Method: "GET", Path: "/nope", Status: 404, Code: httpapi.CodeNotFound},
		},
	}
	// Sequential: the subtests share the log.
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			buf.Reset()
			serve(h, tt.method, tt.path, tt.tok, tt.body)
			out := buf.String()
			for _, s := range []string{token, wrongToken, secret} {
				if strings.Contains(out, s) {
					t.Errorf("log holds %q:\n%s", s, out)
				}
			}
			lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
			if len(lines) != 1 {
				t.Fatalf("log has %d lines for one request, want 1:\n%s", len(lines), out)
			}
			var got logLine
			var fields map[string]any
			if err := json.Unmarshal([]byte(lines[0]), &got); err != nil {
				t.Fatalf("log line %q: %v", lines[0], err)
			}
			json.Unmarshal([]byte(lines[0]), &fields)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("log line mismatch (-want +got):\n%s", diff)
			}
			d, ok := fields["duration"].(float64) // nanoseconds
			if !ok {
				t.Fatalf("log line %q has no duration", lines[0])
			}
			if time.Duration(d) < tt.minDuration || time.Duration(d) > 5*time.Second {
				t.Errorf("log line duration = %v, want from %v to 5s", time.Duration(d), tt.minDuration)
			}
			if _, ok := fields["code"]; ok != (tt.want.Code != "") {
				t.Errorf("log line %q: has code = %v, want %v", lines[0], ok, tt.want.Code != "")
			}
		})
	}
}

func TestClientGoneCancelsRun(t *testing.T) {
	t.Parallel()
	started := make(chan struct{})
	observed := make(chan error, 1)
	f := &fakeRunner{run: func(ctx context.Context, _ string, _ any) (*dockerrun.Result, error) {
		close(started)
		select {
		case <-ctx.Done():
			observed <- context.Cause(ctx)
			return nil, &dockerrun.Error{Code: dockerrun.CodeCanceled, Err: ctx.Err()}
		case <-time.After(10 * time.Second):
			observed <- nil
			return &dockerrun.Result{Raw: json.RawMessage(`{}`)}, nil
		}
	}}
	srv := httptest.NewServer(newHandler(t, f, httpapi.Config{}))
	t.Cleanup(srv.Close)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL+"/run", strings.NewReader(`{"image":"a","payload":{}}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set(httpapi.Header, token)
	done := make(chan error, 1)
	go func() {
		resp, err := srv.Client().Do(req)
		if err == nil {
			resp.Body.Close()
		}
		done <- err
	}()
	select {
	case <-started:
	case <-time.After(5 * time.Second):
		t.Fatal("Run() not called within 5s")
	}
	cancel()
	select {
	case err := <-observed:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Run() ctx cause = %v, want context.Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run() ctx not done within 5s of the client going away")
	}
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("client Do() error = %v, want context.Canceled", err)
	}
}
