package adversarial

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/dockerrun/dockerrun/internal/testenv"
)

// containersOf lists the server's containers.
func containersOf(t *testing.T, tg *target) []string {
	t.Helper()
	var ids []string
	for _, c := range testenv.Containers(t, ownerLabel, tg.Owner) {
		ids = append(ids, c.ID)
	}
	return ids
}

// The agent caps the program's output at the limit the runner gives it
// (DOCKERRUN_MAX_OUTPUT_SIZE) and answers with what fits and an error; the
// runner's own cap on the bytes it reads (RUN_MAX_OUTPUT_SIZE) is the
// backstop, which only code that writes past the agent reaches.
func TestOutput(t *testing.T) {
	tests := []struct {
		id   string
		code string
		// check checks the answer and returns a note for the table.
		check func(t *testing.T, r response) string
	}{
		{
			id:   "output-infinite",
			code: "while True:\n    print(\"x\" * 1000)\n",
			check: func(t *testing.T, r response) string {
				expectAgentError(t, r, "Output limit exceeded")
				return capped(t, r, r.stdout)
			},
		},
		{
			id:   "output-no-newline",
			code: "import sys\nwhile True:\n    sys.stdout.write(\"y\" * 4096)\n",
			check: func(t *testing.T, r response) string {
				expectAgentError(t, r, "Output limit exceeded")
				return capped(t, r, r.stdout)
			},
		},
		{
			id:   "output-under",
			code: fmt.Sprintf("import sys\nsys.stdout.write(\"u\" * %d)\n", outputLimit-512),
			check: func(t *testing.T, r response) string {
				if r.status != http.StatusOK || r.agentErr != "" || len(r.stdout) != outputLimit-512 {
					t.Fatalf("want 200 with all %d bytes and no error, got %d bytes: %s", outputLimit-512, len(r.stdout), r.detail())
				}
				return "all of it returned"
			},
		},
		{
			id:   "output-at",
			code: fmt.Sprintf("import sys\nsys.stdout.write(\"a\" * %d)\n", outputLimit),
			check: func(t *testing.T, r response) string {
				// The program stays within the limit, but the answer
				// around its output would not: the agent cuts it.
				expectAgentError(t, r, "Output limit exceeded: the output does not fit")
				return capped(t, r, r.stdout)
			},
		},
		{
			id:   "output-over",
			code: fmt.Sprintf("import sys\nsys.stdout.write(\"o\" * %d)\n", outputLimit+1),
			check: func(t *testing.T, r response) string {
				expectAgentError(t, r, "Output limit exceeded: the program wrote more than")
				return capped(t, r, r.stdout)
			},
		},
		{
			id:   "output-binary",
			code: "import sys\nsys.stdout.buffer.write(bytes(range(256)) * 16)\n",
			check: func(t *testing.T, r response) string {
				if r.status != http.StatusOK || r.agentErr != "" || !json.Valid(r.body) {
					t.Fatalf("want 200 and valid JSON, got %s", r.detail())
				}
				if !strings.Contains(r.stdout, "\x00\x01") || !strings.Contains(r.stdout, "\uFFFD") {
					t.Fatalf("stdout %q: want NUL bytes kept and invalid UTF-8 as U+FFFD", clip(r.stdout, 300))
				}
				return "valid JSON: NUL escaped, invalid UTF-8 replaced by U+FFFD"
			},
		},
		{
			id:   "stderr-flood",
			code: "import os\nb = b\"e\" * (1 << 20)\nwhile True:\n    os.write(2, b)\n",
			check: func(t *testing.T, r response) string {
				expectAgentError(t, r, "Output limit exceeded")
				return capped(t, r, r.stderr)
			},
		},
		{
			// Writing to PID 1's stdout would skip the agent; PID 1 runs
			// as root, non-dumpable, so its descriptors are not the
			// code's to open.
			id:   "agent-stdout-flood",
			code: "with open(\"/proc/1/fd/1\", \"wb\") as f:\n    while True:\n        f.write(b\"x\" * 65536)\n",
			check: func(t *testing.T, r response) string {
				return expectDenied(t, r, "/proc/1/fd/1")
			},
		},
		{
			id:   "fake-result",
			code: "with open(\"/proc/1/fd/1\", \"w\") as f:\n    f.write('{\"stdout\": \"forged\", \"stderr\": \"\", \"error\": \"\", \"admin\": true}\\n')\nprint(\"real\")\n",
			check: func(t *testing.T, r response) string {
				return expectDenied(t, r, "/proc/1/fd/1")
			},
		},
		{
			id:   "agent-stderr",
			code: "with open(\"/proc/1/fd/2\", \"w\") as f:\n    f.write(\"agent panic: forged \" + \"E\" * (256 << 10))\nprint(\"real\")\n",
			check: func(t *testing.T, r response) string {
				return expectDenied(t, r, "/proc/1/fd/2")
			},
		},
	}
	eachRuntime(t, func(t *testing.T, rt string) {
		tg := start(t, rt)
		for _, tt := range tests {
			t.Run(tt.id, func(t *testing.T) {
				t.Parallel()
				r := tg.python(context.Background(), tt.code)
				note := tt.check(t, r)
				within(t, r, 0, execLimit+slowStart)
				record(t, tt.id, rt, r.String()+"; "+note)
			})
		}
	})
}

// capped checks that out is a good part of the limit but that the whole
// answer fits in it, and describes it.
func capped(t *testing.T, r response, out string) string {
	t.Helper()
	if len(r.body) > outputLimit || len(out) < outputLimit/4 {
		t.Fatalf("answer of %d bytes with %d bytes of output: want at most %d and a good part of it", len(r.body), len(out), outputLimit)
	}
	return fmt.Sprintf("%d bytes of output kept, answer %d bytes", len(out), len(r.body))
}

// expectDenied checks that the program's open of path failed with EACCES
// and that the answer is the agent's, with the program's traceback in its
// stderr field, and describes it.
func expectDenied(t *testing.T, r response, path string) string {
	t.Helper()
	expectAgentError(t, r, "Exit code: 1")
	if !strings.Contains(r.stderr, "PermissionError: [Errno 13] Permission denied: '"+path+"'") || strings.Contains(string(r.body), "forged") {
		t.Fatalf("want the program's PermissionError for %s in the agent's answer, got %s", path, r.detail())
	}
	return "open(" + path + ") EACCES: PID 1 runs as root, non-dumpable; the agent's answer, with the traceback in stderr"
}
