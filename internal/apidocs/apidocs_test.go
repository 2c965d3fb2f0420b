package apidocs

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"strconv"
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
	status   int // of the response
	response map[string]any
}

var (
	section = regexp.MustCompile(`(?m)^### (.+)$`)
	block   = regexp.MustCompile("(?s)##### (Request|Response)(?: \\((\\d{3})\\))?\\s*\n```json\n(.*?)\n```")
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
		ex := example{title: doc[h[2]:h[3]], status: 200}
		for _, m := range block.FindAllStringSubmatch(doc[h[1]:end], -1) {
			switch m[1] {
			case "Request":
				if !json.Valid([]byte(m[3])) {
					t.Fatalf("%s: request is not valid JSON:\n%s", ex.title, m[3])
				}
				ex.request = json.RawMessage(m[3])
			case "Response":
				if m[2] != "" {
					ex.status, _ = strconv.Atoi(m[2])
				}
				if err := json.Unmarshal([]byte(m[3]), &ex.response); err != nil {
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
		"### B\ntext\n##### Request\n```json\n{\"image\": \"y\", \"payload\": {\"a\": 1}}\n```\n##### Response (400)\n```json\n{\"error\": \"e...\"}\n```\n"
	got := parseExamples(t, doc)
	want := []example{
		{title: "A", request: json.RawMessage(`{"image": "x", "payload": {}}`), status: 200, response: map[string]any{"stdout": "1"}},
		{title: "B", request: json.RawMessage(`{"image": "y", "payload": {"a": 1}}`), status: 400, response: map[string]any{"error": "e..."}},
	}
	if diff := cmp.Diff(want, got, cmp.AllowUnexported(example{})); diff != "" {
		t.Errorf("parseExamples() mismatch (-want +got):\n%s", diff)
	}
}

// matches reports how got differs from want: got must have every field of
// want, recursively through objects and arrays (arrays of the same length);
// a wanted string ending in "..." matches any string with that beginning,
// and "..." alone any value.
func matches(want, got map[string]any) string {
	return strings.Join(matchValue("", want, got), "\n")
}

func matchValue(path string, want, got any) []string {
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return []string{fmt.Sprintf("%s = %#v, want an object", path, got)}
		}
		var diffs []string
		for k, wv := range w {
			gv, ok := g[k]
			if !ok {
				diffs = append(diffs, fmt.Sprintf("field %s.%s missing", path, k))
				continue
			}
			diffs = append(diffs, matchValue(path+"."+k, wv, gv)...)
		}
		return diffs
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			return []string{fmt.Sprintf("%s = %#v, want an array of %d", path, got, len(w))}
		}
		var diffs []string
		for i := range w {
			diffs = append(diffs, matchValue(fmt.Sprintf("%s[%d]", path, i), w[i], g[i])...)
		}
		return diffs
	case string:
		if w == "..." {
			return nil
		}
		if prefix, ok := strings.CutSuffix(w, "..."); ok {
			if g, isStr := got.(string); !isStr || !strings.HasPrefix(g, prefix) {
				return []string{fmt.Sprintf("%s = %#v, want a string starting %q", path, got, prefix)}
			}
			return nil
		}
	}
	if d := cmp.Diff(want, got); d != "" {
		return []string{fmt.Sprintf("%s (-want +got):\n%s", path, d)}
	}
	return nil
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
			if status != ex.status {
				t.Fatalf("POST /run = %d %s, want %d", status, body, ex.status)
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

func TestMatches(t *testing.T) {
	got := map[string]any{"stdout": "42\n", "duration": 5.0, "runs": []any{map[string]any{"error": "Exit code: 1", "usage": map[string]any{"memory": 7.0}}}}
	tests := []struct {
		want map[string]any
		ok   bool
	}{
		{want: map[string]any{"stdout": "42\n"}, ok: true},
		{want: map[string]any{"stdout": "4..."}, ok: true},
		{want: map[string]any{"duration": "..."}, ok: true},
		{want: map[string]any{"runs": []any{map[string]any{"error": "Exit...", "usage": map[string]any{"memory": "..."}}}}, ok: true},
		{want: map[string]any{"stdout": "5..."}},
		{want: map[string]any{"stderr": "..."}},
		{want: map[string]any{"runs": []any{}}},
		{want: map[string]any{"runs": []any{map[string]any{"error": ""}}}},
		{want: map[string]any{"duration": 6.0}},
	}
	for _, tt := range tests {
		if d := matches(tt.want, got); (d == "") != tt.ok {
			t.Errorf("matches(%v) = %q, want a match: %v", tt.want, d, tt.ok)
		}
	}
}
