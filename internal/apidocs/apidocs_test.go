package apidocs

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/dockerrun/dockerrun/internal/testenv"
	"github.com/google/go-cmp/cmp"
)

// example is one "### Title" section of run.md: a request body and the
// expected answer.
type example struct {
	title    string
	request  json.RawMessage
	response map[string]any
}

var (
	section = regexp.MustCompile(`(?m)^### (.+)$`)
	block   = regexp.MustCompile("(?s)##### (Request|Response)\\s*\n```json\n(.*?)\n```")
)

// parseExamples reads the examples of a run.md.
func parseExamples(t *testing.T, doc string) []example {
	t.Helper()
	heads := section.FindAllStringSubmatchIndex(doc, -1)
	var out []example
	for i, h := range heads {
		end := len(doc)
		if i+1 < len(heads) {
			end = heads[i+1][0]
		}
		ex := example{title: doc[h[2]:h[3]]}
		for _, m := range block.FindAllStringSubmatch(doc[h[1]:end], -1) {
			switch m[1] {
			case "Request":
				if !json.Valid([]byte(m[2])) {
					t.Fatalf("%s: request is not valid JSON:\n%s", ex.title, m[2])
				}
				ex.request = json.RawMessage(m[2])
			case "Response":
				if err := json.Unmarshal([]byte(m[2]), &ex.response); err != nil {
					t.Fatalf("%s: response is not a JSON object: %v", ex.title, err)
				}
			}
		}
		if ex.request == nil || ex.response == nil {
			t.Fatalf("%s: want a Request and a Response block", ex.title)
		}
		out = append(out, ex)
	}
	return out
}

func TestParseExamples(t *testing.T) {
	doc := "### A\n##### Request\n```json\n{\"image\": \"x\", \"payload\": {}}\n```\n##### Response\n```json\n{\"stdout\": \"1\"}\n```\n" +
		"### B\ntext\n##### Request\n```json\n{\"image\": \"y\", \"payload\": {\"a\": 1}}\n```\n##### Response\n```json\n{\"error\": \"e...\"}\n```\n"
	got := parseExamples(t, doc)
	want := []example{
		{title: "A", request: json.RawMessage(`{"image": "x", "payload": {}}`), response: map[string]any{"stdout": "1"}},
		{title: "B", request: json.RawMessage(`{"image": "y", "payload": {"a": 1}}`), response: map[string]any{"error": "e..."}},
	}
	if diff := cmp.Diff(want, got, cmp.AllowUnexported(example{})); diff != "" {
		t.Errorf("parseExamples() mismatch (-want +got):\n%s", diff)
	}
}

// matches reports whether got has every field of want; a wanted string
// ending in "..." matches any string with that beginning.
func matches(want, got map[string]any) string {
	var diffs []string
	for k, w := range want {
		g, ok := got[k]
		ws, wIsStr := w.(string)
		gs, gIsStr := g.(string)
		switch {
		case !ok:
			diffs = append(diffs, fmt.Sprintf("field %q missing", k))
		case wIsStr && gIsStr && strings.HasSuffix(ws, "..."):
			if !strings.HasPrefix(gs, strings.TrimSuffix(ws, "...")) {
				diffs = append(diffs, fmt.Sprintf("field %q = %q, want a string starting %q", k, gs, strings.TrimSuffix(ws, "...")))
			}
		default:
			if d := cmp.Diff(w, g); d != "" {
				diffs = append(diffs, fmt.Sprintf("field %q (-want +got):\n%s", k, d))
			}
		}
	}
	return strings.Join(diffs, "\n")
}

func TestRunExamples(t *testing.T) {
	doc, err := os.ReadFile("../../api_docs/run.md")
	if err != nil {
		t.Fatal(err)
	}
	examples := parseExamples(t, string(doc))
	if len(examples) < 7 {
		t.Fatalf("run.md has %d examples, want at least 7", len(examples))
	}
	testenv.LanguageImages(t, "python", "bash", "c")
	s := testenv.StartServer(t, "RUN_MAX_EXECUTION_TIME=4", "SERVER_WORKER_THREADS=4")
	for _, ex := range examples {
		t.Run(ex.title, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			// The documented images are dockerrun/<language>; the tests'
			// follow DOCKERRUN_IMAGES_PREFIX.
			req := strings.ReplaceAll(string(ex.request), `"dockerrun/`, `"`+testenv.ImagePrefix()+"/")
			status, body, err := s.Do(ctx, "POST", "/run", []byte(req))
			if err != nil {
				t.Fatalf("POST /run: %v", err)
			}
			if status != 200 {
				t.Fatalf("POST /run = %d %s, want 200", status, body)
			}
			var got map[string]any
			if err := json.Unmarshal(body, &got); err != nil {
				t.Fatalf("answer is not a JSON object: %v\n%s", err, body)
			}
			if d := matches(ex.response, got); d != "" {
				t.Errorf("POST /run answer mismatch for the documented example:\n%s", d)
			}
		})
	}
}
