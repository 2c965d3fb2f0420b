// Package httpapi serves dockerrun's HTTP API, the API of glot.io's
// docker-run:
//
//	GET  /         service info (no token)
//	GET  /version  the Docker daemon's version (token)
//	POST /run      run {"image": ..., "payload": {...}} (token)
//	GET  /healthz  200 when the daemon answers, 503 otherwise (no token)
//	GET  /readyz   200 when a run can be taken now, 503 otherwise (no token)
//
// The token travels in the X-Access-Token header. Every error is answered
// with {"error": CODE, "message": TEXT} and a status from one table
// ([StatusOf]). The contract is written down in the api_docs folder.
package httpapi

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/docker/docker/api/types"
	"github.com/dockerrun/dockerrun"
	"github.com/dockerrun/dockerrun/internal/jsonscan"
	"github.com/dockerrun/dockerrun/internal/protocol"
)

// Runner is what the API needs of a [*dockerrun.Runner].
type Runner interface {
	Run(ctx context.Context, image string, payload any, opts ...dockerrun.RunOption) (*dockerrun.Result, error)
	Version(ctx context.Context) (types.Version, error)
	Ping(ctx context.Context) error
	// Ready returns nil when a run can be taken now; see
	// [dockerrun.Runner.Ready].
	Ready(ctx context.Context) error
}

// Config configures [New].
type Config struct {
	// Runner runs the code. Required.
	Runner Runner
	// AccessToken is the secret that clients send in X-Access-Token.
	// Required: an empty token is refused by New.
	AccessToken string
	// Logger gets one line per request. Default: discard.
	Logger *slog.Logger
	// Service is what GET / answers. Default: name "docker-run", the
	// module's version and docker-run's description.
	Service ServiceInfo
	// MaxBodyBytes caps a request body; larger bodies get 413. Default:
	// [DefaultMaxBodyBytes].
	MaxBodyBytes int64
	// MaxJSONDepth caps the nesting of a request body's JSON. Default:
	// [DefaultMaxJSONDepth].
	MaxJSONDepth int
	// RetryAfter is what a 503 answer's Retry-After header says. Default:
	// one second.
	RetryAfter time.Duration
}

// ServiceInfo is the answer of GET /.
type ServiceInfo struct {
	Name        string `json:"name"`
	Version     string `json:"version"`
	Description string `json:"description"`
}

// Defaults of [Config].
const (
	DefaultMaxBodyBytes = 8 << 20
	DefaultMaxJSONDepth = 64
)

// Header is the request header that carries the access token.
const Header = "X-Access-Token"

type api struct {
	cfg       Config
	tokenHash [sha256.Size]byte
	log       *slog.Logger
}

// New returns the API's handler.
func New(cfg Config) (http.Handler, error) {
	if cfg.Runner == nil {
		return nil, errors.New("httpapi: no runner")
	}
	if cfg.AccessToken == "" {
		return nil, errors.New("httpapi: empty access token: every client could run code")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Service.Name == "" {
		cfg.Service = ServiceInfo{Name: "docker-run", Version: dockerrun.Version(), Description: "Api for running code in transient docker containers"}
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if cfg.MaxJSONDepth <= 0 {
		cfg.MaxJSONDepth = DefaultMaxJSONDepth
	}
	if cfg.RetryAfter <= 0 {
		cfg.RetryAfter = time.Second
	}
	a := &api{cfg: cfg, tokenHash: sha256.Sum256([]byte(cfg.AccessToken)), log: cfg.Logger}

	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", a.root)
	mux.HandleFunc("GET /healthz", a.healthz)
	mux.HandleFunc("GET /readyz", a.readyz)
	mux.HandleFunc("GET /version", a.authorized(a.version))
	mux.HandleFunc("POST /run", a.authorized(a.run))
	// A known route with another method is a 405, not a 404: the catch-all
	// below would otherwise take it.
	for path, allow := range map[string]string{"/{$}": "GET, HEAD", "/healthz": "GET, HEAD", "/readyz": "GET, HEAD", "/version": "GET, HEAD", "/run": "POST"} {
		mux.HandleFunc(path, a.methodNotAllowed(allow))
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		a.fail(w, r, &Error{Code: CodeNotFound, Message: "no such route: see api_docs for GET /, GET /version and POST /run"})
	})
	return a.logged(mux), nil
}

// methodNotAllowed answers 405 with the methods that the route allows.
func (a *api) methodNotAllowed(allow string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", allow)
		a.fail(w, r, &Error{Code: CodeMethodNotAllowed, Message: fmt.Sprintf("method %s is not allowed on %s: use %s", r.Method, r.URL.Path, allow)})
	}
}

// authorized checks the access token in constant time before calling next.
func (a *api) authorized(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		got := sha256.Sum256([]byte(r.Header.Get(Header)))
		if r.Header.Get(Header) == "" || subtle.ConstantTimeCompare(got[:], a.tokenHash[:]) != 1 {
			a.fail(w, r, &Error{Code: CodeAccessToken, Message: "Missing or wrong access token"})
			return
		}
		next(w, r)
	}
}

func (a *api) root(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, a.cfg.Service)
}

func (a *api) healthz(w http.ResponseWriter, r *http.Request) {
	a.probe(w, r, CodeUnhealthy, a.cfg.Runner.Ping)
}

// readyz answers whether a run can be taken now: load balancers send runs
// only to servers that answer 200.
func (a *api) readyz(w http.ResponseWriter, r *http.Request) {
	a.probe(w, r, CodeNotReady, a.cfg.Runner.Ready)
}

// probe answers 200 {"status":"ok"} when check passes, else code (a 503)
// with the check's error code and message as the message.
func (a *api) probe(w http.ResponseWriter, r *http.Request, code string, check func(context.Context) error) {
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	if err := check(ctx); err != nil {
		cause := AsError(err)
		msg := cause.Code
		if cause.Message != cause.Code {
			msg += ": " + cause.Message
		}
		a.fail(w, r, &Error{Code: code, Message: msg, Err: err})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (a *api) version(w http.ResponseWriter, r *http.Request) {
	v, err := a.cfg.Runner.Version(r.Context())
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, struct {
		Docker types.Version `json:"docker"`
	}{v})
}

// runRequest is the body of POST /run.
type runRequest struct {
	Image   *string         `json:"image"`
	Payload json.RawMessage `json:"payload"`
	// Limits, optional, lower the server's limits for this run.
	Limits json.RawMessage `json:"limits"`
}

func (a *api) run(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	image, payload, limits, err := a.decodeRun(w, r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	res, err := a.cfg.Runner.Run(r.Context(), image, payload, dockerrun.WithLimits(limits))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	setOutcome(r, nil, res.Warm)
	w.Header().Set("Server-Timing", serverTiming(start, res.Timing, time.Now(), res.Warm))
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	w.Write(res.Raw)
}

// decodeRun reads and checks the body of POST /run. The runner checks the
// limits' values against its own.
func (a *api) decodeRun(w http.ResponseWriter, r *http.Request) (string, json.RawMessage, dockerrun.Limits, error) {
	image, payload, rawLimits, err := a.decodeRunBody(w, r)
	if err != nil || rawLimits == nil || string(rawLimits) == "null" {
		return image, payload, dockerrun.Limits{}, err
	}
	limits, err := protocol.DecodeLimits(rawLimits)
	if err != nil {
		return "", nil, dockerrun.Limits{}, &Error{Code: string(dockerrun.CodeRequestLimits),
			Message: `"limits" must be {"execution_time": seconds, "output_size": bytes, "memory": bytes}, each optional: ` + err.Error()}
	}
	return image, payload, limits, nil
}

// decodeRunBody reads the body of POST /run and checks its shape.
func (a *api) decodeRunBody(w http.ResponseWriter, r *http.Request) (string, json.RawMessage, json.RawMessage, error) {
	body, err := readBody(w, r, a.cfg.MaxBodyBytes)
	if err != nil {
		return "", nil, nil, err
	}
	if depth := jsonscan.MaxDepth(body); depth > a.cfg.MaxJSONDepth {
		return "", nil, nil, &Error{Code: CodeRequestInvalid, Message: fmt.Sprintf("request body nests %d levels deep: at most %d are allowed", depth, a.cfg.MaxJSONDepth)}
	}
	var req runRequest
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&req); err != nil {
		return "", nil, nil, &Error{Code: CodeRequestParse, Message: "request body is not a JSON object {\"image\": string, \"payload\": object}: " + err.Error()}
	}
	// dec.More would miss a trailing '}' or ']': anything but space is an error.
	if rest := bytes.TrimLeft(body[dec.InputOffset():], " \t\r\n"); len(rest) > 0 {
		return "", nil, nil, &Error{Code: CodeRequestParse, Message: "request body holds more than one JSON value"}
	}
	switch {
	case req.Image == nil || *req.Image == "":
		return "", nil, nil, &Error{Code: CodeRequestInvalid, Message: `"image" is missing: name a local image, e.g. "dockerrun/python:latest"`}
	case len(req.Payload) == 0 || req.Payload[0] != '{':
		return "", nil, nil, &Error{Code: CodeRequestInvalid, Message: `"payload" must be a JSON object, e.g. {"language": "python", "files": [...]}`}
	}
	return *req.Image, req.Payload, req.Limits, nil
}

// readBody reads at most limit bytes of the body.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	var buf bytes.Buffer
	_, err := buf.ReadFrom(http.MaxBytesReader(w, r.Body, limit))
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		return nil, &Error{Code: CodeRequestTooLarge, Message: fmt.Sprintf("request body is larger than %d bytes", limit)}
	case err != nil:
		return nil, &Error{Code: CodeRequestParse, Message: "read request body: " + err.Error()}
	}
	return buf.Bytes(), nil
}

// writeJSON writes v as the JSON body with the given status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// fail writes err as [WriteError] does, with a Retry-After header on a 503.
func (a *api) fail(w http.ResponseWriter, r *http.Request, err error) {
	e := AsError(err)
	setOutcome(r, e, false)
	if e.Status() == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", strconv.Itoa(int(max(a.cfg.RetryAfter, time.Second)/time.Second)))
	}
	WriteError(w, e)
}

// WriteError writes err, made an API error by [AsError], as the body
// {"error": CODE, "message": TEXT} with the code's status, and returns the
// API error, whose cause the caller may log.
func WriteError(w http.ResponseWriter, err error) *Error {
	e := AsError(err)
	writeJSON(w, e.Status(), map[string]string{"error": e.Code, "message": e.Message})
	return e
}
