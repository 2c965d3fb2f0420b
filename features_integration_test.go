package dockerrun_test

import (
	"context"
	"encoding/json"
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/dockerrun/dockerrun"
	"github.com/dockerrun/dockerrun/internal/testenv"
	"github.com/google/go-cmp/cmp"
)

// runAnswer runs req in image and returns the typed answer.
func runAnswer(t *testing.T, r *dockerrun.Runner, image string, req dockerrun.Request, opts ...dockerrun.RunOption) *dockerrun.Answer {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	res, err := r.Run(ctx, image, req, opts...)
	if err != nil {
		t.Fatalf("Run() error: %v", err)
	}
	ans, err := res.Answer()
	if err != nil {
		t.Fatalf("Answer() error: %v", err)
	}
	if ans.Usage == nil {
		t.Errorf("answer %s has no usage", res.Raw)
	}
	return ans
}

// stoppedAfter matches the time in a time limit message.
var stoppedAfter = regexp.MustCompile(`after [0-9.]+m?s$`)

// outcomes returns the runs without their duration and usage, and with the
// time in a time limit message replaced by T.
func outcomes(runs []dockerrun.RunAnswer) []dockerrun.RunAnswer {
	out := make([]dockerrun.RunAnswer, len(runs))
	for i, r := range runs {
		out[i] = dockerrun.RunAnswer{Stdout: r.Stdout, Stderr: r.Stderr, Error: stoppedAfter.ReplaceAllString(r.Error, "after T")}
	}
	return out
}

// TestTestCases runs test cases in dockerrun's C and Python images: built
// once, run per input, a failing case does not stop the next, a failed build
// answers as glot's agent does.
func TestTestCases(t *testing.T) {
	t.Parallel()
	images := testenv.LanguageImages(t, "c", "python")
	c, python := images[0], images[1]
	r := newRunner(t, dockerrun.WithMaxExecutionTime(20*time.Second))
	const sum = "#include <stdio.h>\n#include <unistd.h>\n" +
		"int main(void) { int a, b; if (scanf(\"%d %d\", &a, &b) != 2) return 2;\n" +
		"  if (a < 0) { puts(\"sleeping\"); fflush(stdout); sleep(60); }\n" +
		"  printf(\"%d\\n\", a + b); return 0; }\n"
	const square = "import time\nn = int(input())\nif n < 0:\n    print('sleeping', flush=True)\n    time.sleep(60)\nprint(n * n)\n"
	slow := 500 * time.Millisecond
	tests := []struct {
		name  string
		image string
		req   dockerrun.Request
		// want is the top level without duration and usage.
		want     dockerrun.Answer
		wantErr  string // a prefix of the top-level error, when it varies
		wantRuns []dockerrun.RunAnswer
	}{
		{
			name:  "c: compiled once, three answers",
			image: c,
			req: dockerrun.Request{
				Files: []dockerrun.File{{Name: "main.c", Content: sum}},
				// The build leaves a line per compilation; each run shows
				// the count.
				RunInstructions: &dockerrun.RunInstructions{
					BuildCommands: []string{"cc -o a.out main.c", "echo built >> builds"},
					RunCommand:    "./a.out; wc -l < builds",
				},
				Runs: []dockerrun.RunInput{{Stdin: "1 2"}, {Stdin: "x"}, {Stdin: "40 2"}},
			},
			wantRuns: []dockerrun.RunAnswer{{Stdout: "3\n1\n"}, {Stdout: "1\n"}, {Stdout: "42\n1\n"}},
		},
		{
			name:     "c: a failing case does not stop the next",
			image:    c,
			req:      dockerrun.Request{Language: "c", Files: []dockerrun.File{{Name: "main.c", Content: sum}}, Runs: []dockerrun.RunInput{{Stdin: "1 2"}, {Stdin: "x"}, {Stdin: "40 2"}}},
			wantRuns: []dockerrun.RunAnswer{{Stdout: "3\n"}, {Error: "Exit code: 2"}, {Stdout: "42\n"}},
		},
		{
			name:  "c: the build fails",
			image: c,
			req: dockerrun.Request{Language: "c", Files: []dockerrun.File{{Name: "main.c", Content: "int main(void) { return undefined; }"}},
				Runs: []dockerrun.RunInput{{Stdin: "1"}, {Stdin: "2"}}},
			want:     dockerrun.Answer{Stderr: "main.c: In function ‘main’:", Error: "Exit code: 1"},
			wantRuns: []dockerrun.RunAnswer{},
		},
		{
			name:  "c: a middle case times out",
			image: c,
			req: dockerrun.Request{Language: "c", Files: []dockerrun.File{{Name: "main.c", Content: sum}},
				Runs: []dockerrun.RunInput{{Stdin: "1 2"}, {Stdin: "-1 0", ExecutionTime: slow}, {Stdin: "40 2"}}},
			wantRuns: []dockerrun.RunAnswer{{Stdout: "3\n"}, {Stdout: "sleeping\n", Error: "Execution time limit exceeded: the program was stopped after T"}, {Stdout: "42\n"}},
		},
		{
			name:  "python: a middle case times out",
			image: python,
			req: dockerrun.Request{Language: "python", Files: []dockerrun.File{{Name: "main.py", Content: square}},
				Runs: []dockerrun.RunInput{{Stdin: "2"}, {Stdin: "-1", ExecutionTime: slow}, {Stdin: "x"}, {Stdin: "3"}}},
			wantRuns: []dockerrun.RunAnswer{
				{Stdout: "4\n"},
				{Stdout: "sleeping\n", Error: "Execution time limit exceeded: the program was stopped after T"},
				{Stderr: "Traceback (most recent call last):", Error: "Exit code: 1"},
				{Stdout: "9\n"},
			},
		},
		{
			name:  "python: the build fails",
			image: python,
			req: dockerrun.Request{Files: []dockerrun.File{{Name: "main.py", Content: "print(1 +)\n"}},
				RunInstructions: &dockerrun.RunInstructions{BuildCommands: []string{"python3 -m py_compile main.py"}, RunCommand: "python3 main.py"},
				Runs:            []dockerrun.RunInput{{Stdin: "1"}}},
			want:     dockerrun.Answer{Stderr: "  File \"main.py\", line 1", Error: "Exit code: 1"},
			wantRuns: []dockerrun.RunAnswer{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ans := runAnswer(t, r, tt.image, tt.req)
			// Stderr of the compiler and of Python varies: compare the
			// first line.
			firstLine := func(s string) string { l, _, _ := strings.Cut(s, "\n"); return l }
			got := dockerrun.Answer{Stdout: ans.Stdout, Stderr: firstLine(ans.Stderr), Error: ans.Error}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("answer mismatch (-want +got):\n%s", diff)
			}
			runs := outcomes(ans.Runs)
			for i := range runs {
				runs[i].Stderr = firstLine(runs[i].Stderr)
			}
			if diff := cmp.Diff(tt.wantRuns, runs); diff != "" {
				t.Errorf("runs mismatch (-want +got):\n%s", diff)
			}
			for i, run := range ans.Runs {
				if i < len(tt.req.Runs) && tt.req.Runs[i].ExecutionTime > 0 && (run.Duration < slow || run.Duration > slow+2*time.Second) {
					t.Errorf("run %d took %v, want about its limit of %v", i, run.Duration, slow)
				}
				if run.Usage.Memory <= 0 {
					t.Errorf("run %d usage = %+v, want some memory", i, run.Usage)
				}
			}
		})
	}
}

// TestUsageMemory checks that usage reports the memory a program really
// used: 64 MiB allocated and touched show as at least that much, under the
// default runtime (runc) and gVisor's (runsc).
func TestUsageMemory(t *testing.T) {
	t.Parallel()
	images := testenv.LanguageImages(t, "c", "python")
	runners := map[string]*dockerrun.Runner{"runc": newRunner(t), "runsc": newRunner(t, dockerrun.WithRuntime("runsc"))}
	const size = 64 << 20
	tests := []struct {
		name  string
		image string
		req   dockerrun.Request
	}{
		{name: "c", image: images[0], req: dockerrun.Request{Language: "c", Files: []dockerrun.File{{Name: "main.c", Content: "#include <stdio.h>\n#include <stdlib.h>\n#include <string.h>\n" +
			"int main(void) { size_t n = 64 << 20; char *p = malloc(n); memset(p, 1, n); printf(\"%zu\\n\", n); return p[n - 1] - 1; }\n"}}}},
		{name: "python", image: images[1], req: dockerrun.Request{Language: "python", Files: []dockerrun.File{{Name: "main.py", Content: "data = bytearray(64 << 20)\nprint(len(data))\n"}}}},
	}
	for rt, r := range runners {
		for _, tt := range tests {
			t.Run(rt+"/"+tt.name, func(t *testing.T) {
				t.Parallel()
				ans := runAnswer(t, r, tt.image, tt.req)
				if ans.Stdout != "67108864\n" || ans.Error != "" {
					t.Fatalf("answer = %+v, want 67108864 and no error", ans)
				}
				if ans.Usage == nil || ans.Usage.Memory < size || ans.Usage.Memory > 4*size {
					t.Errorf("usage = %+v, want memory between 64 MiB and 256 MiB", ans.Usage)
				}
				if ans.Usage != nil && (ans.Usage.CPUTime <= 0 || ans.Usage.CPUTime > ans.Duration+time.Second) {
					t.Errorf("usage = %+v, want CPU time above 0 and at most about the duration %v", ans.Usage, ans.Duration)
				}
			})
		}
	}
}

// TestLoweredLimits checks per-call limits on the real engine: the agent
// stops a sleeping program at the lowered time limit with its output, and
// the runner enforces lowered limits itself for an agent that does not.
func TestLoweredLimits(t *testing.T) {
	t.Parallel()
	python := testenv.LanguageImages(t, "python")[0]
	probe := testenv.Probe(t)
	r := newRunner(t, dockerrun.WithMaxExecutionTime(20*time.Second), dockerrun.WithWarmPool(map[string]int{python: 1}))

	t.Run("agent stops the program at the lowered time", func(t *testing.T) {
		t.Parallel()
		const limit = 1500 * time.Millisecond
		start := time.Now()
		ans := runAnswer(t, r, python, dockerrun.Request{Language: "python",
			Files: []dockerrun.File{{Name: "main.py", Content: "import time\nprint('start', flush=True)\ntime.sleep(60)\n"}}},
			dockerrun.WithLimits(dockerrun.Limits{ExecutionTime: limit}))
		took := time.Since(start)
		if ans.Stdout != "start\n" || !strings.HasPrefix(ans.Error, "Execution time limit exceeded: the program was stopped after 1.") {
			t.Errorf("answer = %+v, want the output so far and the time limit", ans)
		}
		// The agent stops it at 1.2 s, before the runner's 1.5 s.
		if took > limit+time.Second {
			t.Errorf("Run() took %v, want about %v (the server's limit is 20s)", took, limit)
		}
	})
	t.Run("runner kills at the lowered time", func(t *testing.T) {
		t.Parallel()
		start := time.Now()
		_, err := r.Run(context.Background(), probe, map[string]any{"mode": "echo", "sleep": "60s"},
			dockerrun.WithLimits(dockerrun.Limits{ExecutionTime: 700 * time.Millisecond}))
		if !errors.Is(err, dockerrun.ErrExecutionTime) || !strings.Contains(err.Error(), "longer than 700ms") {
			t.Errorf("Run() error = %v, want the lowered execution time limit", err)
		}
		if took := time.Since(start); took > 5*time.Second {
			t.Errorf("Run() took %v, want about 700ms", took)
		}
	})
	t.Run("lowered memory", func(t *testing.T) {
		t.Parallel()
		_, err := r.Run(context.Background(), probe, map[string]any{"mode": "memory"},
			dockerrun.WithLimits(dockerrun.Limits{Memory: 32 << 20}))
		if !errors.Is(err, dockerrun.ErrMemory) || !strings.Contains(err.Error(), "memory limit of 33554432 bytes") {
			t.Errorf("Run() error = %v, want the lowered memory limit", err)
		}
	})
	t.Run("lowered output size", func(t *testing.T) {
		t.Parallel()
		_, err := r.Run(context.Background(), probe, map[string]any{"mode": "flood"},
			dockerrun.WithLimits(dockerrun.Limits{OutputSize: 10000}))
		if !errors.Is(err, dockerrun.ErrOutputSize) || !strings.Contains(err.Error(), "more than 10000 bytes") {
			t.Errorf("Run() error = %v, want the lowered output limit", err)
		}
	})
}

// TestLoweredOutputSizeAnswer checks on the real engine that a request that
// lowers the output size gets the agent's answer cut to it, with the output so
// far and the limit, and not an error of the runner's own cap.
func TestLoweredOutputSizeAnswer(t *testing.T) {
	t.Parallel()
	python := testenv.LanguageImages(t, "python")[0]
	r := newRunner(t, dockerrun.WithMaxExecutionTime(20*time.Second))
	for name, runs := range map[string][]dockerrun.RunInput{"without runs": nil, "with runs": {{Stdin: "a"}, {Stdin: "b"}}} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ans := runAnswer(t, r, python, dockerrun.Request{Language: "python", Runs: runs,
				Files: []dockerrun.File{{Name: "main.py", Content: "print('x' * 5000)\n"}}},
				dockerrun.WithLimits(dockerrun.Limits{OutputSize: 1000}))
			out, errs := ans.Stdout, ans.Error
			for _, run := range ans.Runs {
				out += run.Stdout
				errs += "\n" + run.Error
			}
			if len(out) == 0 || len(out) >= 1000 || strings.Trim(out, "x") != "" {
				t.Errorf("stdout = %d bytes %.20q..., want fewer than 1000 x", len(out), out)
			}
			if !strings.Contains(errs, "Output limit exceeded") || !strings.Contains(errs, "1000 bytes") {
				t.Errorf("errors = %q, want the lowered output limit", errs)
			}
		})
	}
}

// TestServerPassesAnswersThrough checks through the HTTP server that fields
// of an answer that the server does not know reach the client unchanged,
// and that "limits" lowers the server's.
func TestServerPassesAnswersThrough(t *testing.T) {
	t.Parallel()
	python := testenv.LanguageImages(t, "python")[0]
	probe := testenv.Probe(t)
	s := testenv.StartServer(t, "RUN_MAX_EXECUTION_TIME=20")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	status, body, err := s.Run(ctx, probe, map[string]any{"mode": "echo"})
	if err != nil || status != 200 {
		t.Fatalf("POST /run = %d %s, %v", status, body, err)
	}
	var echo map[string]any
	json.Unmarshal(body, &echo)
	if diff := cmp.Diff([]any{1.0, 2.0}, echo["extra"]); diff != "" {
		t.Errorf("unknown field of the answer mismatch (-want +got):\n%s", diff)
	}

	req := `{"image": "` + python + `", "limits": {"execution_time": 1.5},
		"payload": {"language": "python", "files": [{"name": "main.py", "content": "import time\nprint(1, flush=True)\ntime.sleep(60)"}],
		"runs": [{"stdin": ""}]}}`
	start := time.Now()
	status, body, err = s.Do(ctx, "POST", "/run", []byte(req))
	if err != nil || status != 200 {
		t.Fatalf("POST /run = %d %s, %v", status, body, err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("POST /run took %v with a limit of 1.5s", took)
	}
	var ans struct {
		Usage map[string]int64 `json:"usage"`
		Runs  []struct {
			Stdout, Error string
			Usage         map[string]int64
		}
	}
	if err := json.Unmarshal(body, &ans); err != nil {
		t.Fatal(err)
	}
	if _, ok := ans.Usage["cpu_time"]; !ok || len(ans.Runs) != 1 || ans.Runs[0].Stdout != "1\n" ||
		!strings.HasPrefix(ans.Runs[0].Error, "Execution time limit exceeded:") || ans.Runs[0].Usage["memory"] <= 0 {
		t.Errorf("POST /run = %s, want usage and one run stopped at the time limit", body)
	}
}
