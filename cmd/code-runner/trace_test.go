package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestAgentTrace checks that the answer carries the times of the agent's
// steps, in order, when the request asks for them, and only then.
func TestAgentTrace(t *testing.T) {
	for _, tt := range []struct {
		name      string
		request   string
		wantTrace bool
	}{
		{"asked", `{"command":"echo hi","files":[{"name":"a","content":""}],"trace":true}`, true},
		{"not asked", `{"command":"echo hi","files":[{"name":"a","content":""}]}`, false},
		{"bad request", `{"files":[],"trace":true}`, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := agentMain([]string{"--path", t.TempDir()}, strings.NewReader(tt.request), &stdout, &stderr, func(string) string { return "" })
			if code != 0 {
				t.Fatalf("agentMain() = %d, stderr %q", code, stderr.String())
			}
			var ans struct {
				Trace map[string]int64 `json:"trace"`
			}
			if err := json.Unmarshal(stdout.Bytes(), &ans); err != nil {
				t.Fatalf("answer %q: %v", stdout.String(), err)
			}
			if !tt.wantTrace {
				if ans.Trace != nil {
					t.Errorf("answer %q has a trace, want none", stdout.String())
				}
				return
			}
			steps := []string{"received", "read", "parsed", "files", "started", "exited", "done"}
			var got []string
			for _, s := range steps {
				if ans.Trace[s] > 0 {
					got = append(got, s)
				}
			}
			if diff := cmp.Diff(steps, got); diff != "" {
				t.Fatalf("steps with a time in %q mismatch (-want +got):\n%s", stdout.String(), diff)
			}
			for i := 1; i < len(steps); i++ {
				if ans.Trace[steps[i]] < ans.Trace[steps[i-1]] {
					t.Errorf("%s at %d, before %s at %d", steps[i], ans.Trace[steps[i]], steps[i-1], ans.Trace[steps[i-1]])
				}
			}
		})
	}
}
