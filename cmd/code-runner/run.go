package main

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// Environment variables through which the runner passes its limits.
const (
	envMaxOutputSize    = "DOCKERRUN_MAX_OUTPUT_SIZE"
	envMaxExecutionTime = "DOCKERRUN_MAX_EXECUTION_TIME_MS"
)

// limits are the agent's own limits; a zero field means no limit of that kind.
type limits struct {
	// maxOutputSize caps the encoded result, newline included, in bytes.
	maxOutputSize int64
	// maxExecutionTime caps building and running together, counted from the
	// moment the request has been read.
	maxExecutionTime time.Duration
}

// limitsFromEnv reads the limits from DOCKERRUN_MAX_OUTPUT_SIZE (bytes) and
// DOCKERRUN_MAX_EXECUTION_TIME_MS (milliseconds).
func limitsFromEnv(getenv func(string) string) (limits, error) {
	var lim limits
	size, err := envInt(getenv, envMaxOutputSize)
	if err != nil {
		return limits{}, err
	}
	ms, err := envInt(getenv, envMaxExecutionTime)
	if err != nil {
		return limits{}, err
	}
	if ms > int64(time.Duration(1<<63-1)/time.Millisecond) {
		return limits{}, fmt.Errorf("%s: %d is too large", envMaxExecutionTime, ms)
	}
	lim.maxOutputSize = size
	lim.maxExecutionTime = time.Duration(ms) * time.Millisecond
	return lim, nil
}

func envInt(getenv func(string) string, name string) (int64, error) {
	v := strings.TrimSpace(getenv(name))
	if v == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", name, err)
	}
	if n < 0 {
		return 0, fmt.Errorf("%s: %d is negative", name, n)
	}
	return n, nil
}

// killMargin is how long before the execution time limit the agent stops the
// user's processes, so that its answer reaches the runner before the runner's
// own deadline: a tenth of the limit, clamped to [200ms, 1s], and never more
// than half the limit.
func killMargin(limit time.Duration) time.Duration {
	m := min(max(limit/10, 200*time.Millisecond), time.Second)
	return min(m, limit/2)
}

// run carries out a parsed request in workDir: it writes the files, runs the
// build commands and then the run command, and reports the outcome. start is
// when the request was read; the execution time limit counts from there.
func run(ctx context.Context, req *Request, workDir string, lim limits, start time.Time) Result {
	tr := traceFrom(ctx)
	p, err := req.plan()
	if err != nil {
		return Result{Error: err.Error()}
	}
	if lim.maxExecutionTime > 0 {
		var cancel context.CancelFunc
		deadline := start.Add(lim.maxExecutionTime - killMargin(lim.maxExecutionTime))
		ctx, cancel = context.WithDeadlineCause(ctx, deadline, errTimeLimit)
		defer cancel()
	}
	if err := writeFiles(workDir, req.Files); err != nil {
		return Result{Error: err.Error()}
	}
	tr.Files = now()
	env := commandEnv(os.Environ(), workDir)

	began := time.Now()
	for _, script := range p.build {
		out := runCommand(ctx, command{script: script, dir: workDir, env: env, combined: true, maxOutput: lim.maxOutputSize})
		if out.failed() {
			msg := "Build failed: " + out.describe("build", lim, time.Since(start))
			if len(out.stdout) > 0 {
				msg += "\n" + validUTF8(out.stdout)
			}
			return Result{Error: msg, Duration: time.Since(began)}
		}
	}

	c := command{script: p.run, dir: workDir, env: env, maxOutput: lim.maxOutputSize, started: &tr.Started}
	if req.Stdin != "" {
		c.stdin = strings.NewReader(req.Stdin)
	}
	out := runCommand(ctx, c)
	tr.Exited = now()
	return Result{
		Stdout:   validUTF8(out.stdout),
		Stderr:   validUTF8(out.stderr),
		Error:    out.describe("program", lim, time.Since(start)),
		Duration: time.Since(began),
	}
}

// validUTF8 returns b as a string with invalid UTF-8 replaced by U+FFFD.
func validUTF8(b []byte) string {
	return strings.ToValidUTF8(string(b), "\uFFFD")
}
