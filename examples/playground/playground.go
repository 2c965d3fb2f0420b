package main

import (
	"bytes"
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/image"
	"github.com/dockerrun/dockerrun"
	"github.com/dockerrun/dockerrun/examples/images/hello"
	"github.com/dockerrun/dockerrun/httpapi"
	"github.com/dockerrun/dockerrun/internal/protocol"
)

// The page: a template and the static files it links to, all embedded, so
// the playground works offline and from any directory.
//
//go:embed page
var pageFiles embed.FS

// maxBodyBytes caps a request to POST /run: a program and its input typed
// into a page, far below the server's default
// ([httpapi.DefaultMaxBodyBytes]).
const maxBodyBytes = 256 << 10

// labelLanguage is the image label, set by examples/images/build.sh, that
// names the language an image runs.
const labelLanguage = "dockerrun.language"

// language is one language the playground offers.
type language struct {
	// Name is the language, e.g. "python": the dockerrun.language label and
	// the "language" field of a request.
	Name string `json:"name"`
	// Image is the image that runs it. The page never sees it: a request
	// names a language, never an image.
	Image string `json:"-"`
	// Hello is the hello-world payload that fills the editor.
	Hello json.RawMessage `json:"hello"`
}

// names returns the languages' names, separated by commas.
func names(langs []language) string {
	s := make([]string, len(langs))
	for i, l := range langs {
		s[i] = l.Name
	}
	return strings.Join(s, ", ")
}

// imageLister is the part of the Docker client that finds the images.
type imageLister interface {
	ImageList(ctx context.Context, options image.ListOptions) ([]image.Summary, error)
}

// discover returns, sorted by name, the languages that have a hello world
// and an image PREFIX/LANGUAGE:latest on the daemon whose dockerrun.language
// label names that language. The label keeps other images out (glot's, the
// build's rootfs-* images); the name picks one image per language among
// several prefixes on one daemon.
func discover(ctx context.Context, d imageLister, prefix string, hellos []hello.Program) ([]language, error) {
	list, err := d.ImageList(ctx, image.ListOptions{Filters: filters.NewArgs(filters.Arg("label", labelLanguage))})
	if err != nil {
		return nil, fmt.Errorf("list images: %w", err)
	}
	payloads := make(map[string]json.RawMessage, len(hellos))
	for _, h := range hellos {
		payloads[h.Language] = h.Payload
	}
	var langs []language
	for _, img := range list {
		name := img.Labels[labelLanguage]
		want := prefix + "/" + name + ":latest"
		if payloads[name] == nil || !slices.Contains(img.RepoTags, want) {
			continue
		}
		langs = append(langs, language{Name: name, Image: want, Hello: payloads[name]})
	}
	slices.SortFunc(langs, func(a, b language) int { return strings.Compare(a.Name, b.Name) })
	return langs, nil
}

// runFunc runs a payload in a container of an image: [dockerrun.Runner.Run]
// in main, a fake in tests.
type runFunc func(ctx context.Context, image string, payload any) (*dockerrun.Result, error)

// runner returns r's Run as a runFunc.
func runner(r *dockerrun.Runner) runFunc {
	return func(ctx context.Context, image string, payload any) (*dockerrun.Result, error) {
		return r.Run(ctx, image, payload)
	}
}

// config configures [newHandler].
type config struct {
	// Run runs the code.
	Run runFunc
	// Languages are the languages offered, in the order of the picker.
	Languages []language
	// TimeLimit is the runner's execution time limit, shown on the page.
	TimeLimit time.Duration
	// Logger gets one line per run, never the code.
	Logger *slog.Logger
}

type playground struct {
	cfg    config
	byName map[string]language
	page   *template.Template
}

// newHandler returns the playground's handler:
//
//	GET  /          the page
//	GET  /static/*  its script and style sheet
//	POST /run       a payload for the agent, a [dockerrun.Request]
//	                ({"language", "files", "stdin" or "runs", ...}); the
//	                answer is the agent's, as from the server's POST /run,
//	                and every error is {"error": CODE, "message": TEXT} with
//	                the server's code and status.
func newHandler(cfg config) (http.Handler, error) {
	page, err := template.ParseFS(pageFiles, "page/index.html")
	if err != nil {
		return nil, err
	}
	static, err := fs.Sub(pageFiles, "page/static")
	if err != nil {
		return nil, err
	}
	p := &playground{cfg: cfg, byName: make(map[string]language), page: page}
	for _, l := range cfg.Languages {
		p.byName[l.Name] = l
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", p.index)
	mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(static)))
	mux.HandleFunc("POST /run", p.run)
	return withHeaders(http.NewCrossOriginProtection().Handler(mux)), nil
}

// withHeaders keeps the page to its own files (no inline script, no other
// origin, no framing) and the browser to the given content types. With the
// cross-origin protection, another site open in the same browser can
// neither run code here nor frame the page.
func withHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Security-Policy", "default-src 'self'; frame-ancestors 'none'")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		h.ServeHTTP(w, r)
	})
}

// agentLimits tells the page which limit an answer's error reports when
// dockerrun's agent stopped the program itself (with its output so far),
// by the error's prefix: the page then says what it says for the runner's
// error with that code.
var agentLimits = map[string]dockerrun.Code{
	protocol.ErrorTimeLimit:   dockerrun.CodeExecutionTime,
	protocol.ErrorOutputLimit: dockerrun.CodeOutputSize,
}

// index renders the page.
func (p *playground) index(w http.ResponseWriter, r *http.Request) {
	var buf bytes.Buffer
	err := p.page.Execute(&buf, struct {
		Languages   []language
		TimeLimit   time.Duration
		AgentLimits map[string]dockerrun.Code
	}{p.cfg.Languages, p.cfg.TimeLimit, agentLimits})
	if err != nil {
		httpapi.WriteError(w, err)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Write(buf.Bytes())
}

// run runs the payload in the body with the image of its language.
func (p *playground) run(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	lang, res, err := p.runPayload(w, r)
	attrs := []any{"language", lang, "duration", time.Since(start)}
	if err != nil {
		e := httpapi.WriteError(w, err)
		attrs = append(attrs, "status", e.Status(), "code", e.Code)
		if e.Status() >= http.StatusInternalServerError {
			attrs = append(attrs, "error", err)
		}
	} else {
		w.Header().Set("Content-Type", "application/json")
		w.Write(res.Raw)
		attrs = append(attrs, "status", http.StatusOK)
	}
	if p.cfg.Logger != nil {
		p.cfg.Logger.Info("run", attrs...)
	}
}

// runPayload decodes the body and runs it; it returns the language, if it
// is one of the playground's, the result and the error.
func (p *playground) runPayload(w http.ResponseWriter, r *http.Request) (string, *dockerrun.Result, error) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	if tooBig := (*http.MaxBytesError)(nil); errors.As(err, &tooBig) {
		return "", nil, &httpapi.Error{Code: httpapi.CodeRequestTooLarge,
			Message: fmt.Sprintf("the request is larger than %d KiB: make the program or its input smaller", maxBodyBytes>>10)}
	} else if err != nil {
		return "", nil, &httpapi.Error{Code: httpapi.CodeRequestParse, Message: "read request: " + err.Error()}
	}
	// The typed request passes on the fields of the protocol and nothing
	// else, whatever the body holds.
	var req dockerrun.Request
	if err := json.Unmarshal(body, &req); err != nil {
		return "", nil, &httpapi.Error{Code: httpapi.CodeRequestParse,
			Message: `the request is not a JSON object {"language": ..., "files": [...]}: ` + err.Error()}
	}
	lang, ok := p.byName[req.Language]
	if !ok {
		return "", nil, &dockerrun.Error{Code: dockerrun.CodeImageNotAllowed,
			Message: fmt.Sprintf("the playground has no language %.40q: choose one of %s", req.Language, names(p.cfg.Languages))}
	}
	res, err := p.cfg.Run(r.Context(), lang.Image, &req)
	return lang.Name, res, err
}
