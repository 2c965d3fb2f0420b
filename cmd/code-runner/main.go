// Command code-runner is the agent that lives inside dockerrun's language
// images, a drop-in replacement for glot.io's code-runner.
//
// It reads one JSON request from stdin, writes the request's files into the
// work directory (--path, default: the current directory), builds and runs the
// program, and writes exactly one JSON object to stdout:
//
//	{"stdout": "...", "stderr": "...", "error": "...", "duration": 12345,
//	 "usage": {"cpu_time": 1234, "memory": 5678}}
//
// A request with "runs" (test cases) is built once and run once per entry;
// the answer then has a "runs" array with one such object per entry. The
// request and answer types are internal/protocol's.
//
// A bad request (no files, a bad file name, an unknown language) is reported in
// "error" like any other outcome, and the exit status is 0. Only failures of
// the agent itself (an unreadable stdin, a bad limit in the environment) go to
// stderr, with a non-zero exit status.
//
// The limits come from the environment: DOCKERRUN_MAX_OUTPUT_SIZE (bytes) caps
// the size of the JSON object written to stdout, and
// DOCKERRUN_MAX_EXECUTION_TIME_MS (milliseconds) caps the time spent building
// and running, counted from the moment the request's first byte was read.
// Absent or 0 means no limit of that kind. A request's "limits" may lower
// them.
//
// When it runs as PID 1, code-runner starts a copy of itself as the agent and
// stays behind as a minimal init that forwards signals and reaps orphaned
// processes.
//
// Started as root with DOCKERRUN_RUN_AS naming another user, code-runner
// separates privileges: it stays root (non-dumpable, with the few
// capabilities the runner left it), writes the files and runs every command
// as that user, with no capability, so that the user's code can neither
// reach the agent nor forge its answer. See docs/images.md for the whole
// protocol and docs/security.md for why this holds.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == nprocExecArg {
		os.Exit(nprocExec(os.Args[2:], os.Stderr))
	}
	scrubEnviron()
	if os.Getpid() == 1 {
		// Nothing but root may then read PID 1's /proc entries or trace it.
		setNonDumpable()
		os.Exit(initMain(os.Args, os.Stdin, os.Stdout, os.Stderr))
	}
	os.Exit(agentMain(os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.Getenv))
}

// agentMain runs the agent with the given arguments, standard streams and
// environment, and returns the process exit status.
func agentMain(args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) int {
	fs := flag.NewFlagSet("code-runner", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("path", ".", "work `directory`: the request's files are written and its commands run there")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "code-runner: unexpected arguments: %q\n", fs.Args())
		return 2
	}
	lim, err := limitsFromEnv(getenv)
	if err != nil {
		fmt.Fprintf(stderr, "code-runner: %v\n", err)
		return 1
	}
	sb, err := sandboxFromEnv(getenv)
	if err != nil {
		fmt.Fprintf(stderr, "code-runner: %v\n", err)
		return 1
	}
	workDir, err := filepath.Abs(*path)
	if err != nil {
		fmt.Fprintf(stderr, "code-runner: work directory: %v\n", err)
		return 1
	}
	in := &firstByteReader{r: stdin}
	data, err := readRequest(in)
	if err != nil {
		fmt.Fprintf(stderr, "code-runner: read request: %v\n", err)
		return 1
	}
	// The clock starts with the request's first byte, as the runner's
	// starts when it writes it: the container may have been started long
	// before the request arrived, and a large request takes time to read.
	read := time.Now()
	start := read
	if !in.firstAt.IsZero() {
		start = in.firstAt
	}
	tr := &trace{Received: in.first, Read: read.UnixNano()}

	var res Result
	req, err := parseRequest(data)
	if err != nil {
		res = Result{Error: err.Error()}
	} else {
		tr.Parsed = now()
		// The runner reads no more than the request's own output size, so
		// the answer must be cut to it, not to the environment's.
		lim = lim.lower(req.Limits)
		res = run(withSandbox(withTrace(context.Background(), tr), sb), req, workDir, lim, start)
		if req.Trace {
			tr.Done = now()
			res.Trace = tr
		}
	}
	if _, err := stdout.Write(res.encode(lim.maxOutputSize)); err != nil {
		fmt.Fprintf(stderr, "code-runner: write result: %v\n", err)
		return 1
	}
	return 0
}
