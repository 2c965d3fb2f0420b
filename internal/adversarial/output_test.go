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
			// Writing to PID 1's stdout skips the agent: only the runner's
			// own cap stops it, and it stops it at once.
			id:   "agent-stdout-flood",
			code: "with open(\"/proc/1/fd/1\", \"wb\") as f:\n    while True:\n        f.write(b\"x\" * 65536)\n",
			check: func(t *testing.T, r response) string {
				expect(t, r, http.StatusBadRequest, "limits.read.size")
				return "the runner's own cap, before the time limit"
			},
		},
		{
			// The runner answers with the first complete JSON object on the
			// container's stdout. A forged one is the forger's own answer:
			// it reaches nobody else and changes nothing else.
			id:   "fake-result",
			code: "with open(\"/proc/1/fd/1\", \"w\") as f:\n    f.write('{\"stdout\": \"forged\", \"stderr\": \"\", \"error\": \"\", \"admin\": true}\\n')\nprint(\"real\")\n",
			check: func(t *testing.T, r response) string {
				if r.status != http.StatusOK || r.stdout != "forged" || !strings.Contains(string(r.body), `"admin": true`) {
					t.Fatalf("want the forged object verbatim, got %s", r.detail())
				}
				return "the forged object is the run's answer, verbatim; only the forger gets it"
			},
		},
		{
			// The agent's stderr means an agent failure; the message the
			// client gets carries at most 4 KiB of it.
			id:   "agent-stderr",
			code: "with open(\"/proc/1/fd/2\", \"w\") as f:\n    f.write(\"agent panic: forged \" + \"E\" * (256 << 10))\nprint(\"real\")\n",
			check: func(t *testing.T, r response) string {
				expect(t, r, http.StatusInternalServerError, "coderunner.stderr")
				if len(r.message) > 5<<10 || !strings.Contains(r.message, "agent panic: forged") {
					t.Fatalf("message of %d bytes: want the start of the agent's stderr, at most about 4 KiB", len(r.message))
				}
				return fmt.Sprintf("message cut to %d bytes", len(r.message))
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
