package main

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/dockerrun/dockerrun/internal/protocol"
)

// Environment variables through which the runner passes its limits.
const (
	envMaxOutputSize    = protocol.EnvMaxOutputSize
	envMaxExecutionTime = protocol.EnvMaxExecutionTime
)

// limits are the agent's own limits; a zero field means no limit of that kind.
type limits struct {
	// maxOutputSize caps the encoded result, newline included, in bytes.
	maxOutputSize int64
	// maxExecutionTime caps building and running together, counted from the
	// moment the request's first byte was read.
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

// lower returns lim lowered by a request's limits: a request may only
// tighten what the environment says.
func (lim limits) lower(l *protocol.Limits) limits {
	if l == nil {
		return lim
	}
	if t := l.ExecutionTime; t > 0 && (lim.maxExecutionTime == 0 || t < lim.maxExecutionTime) {
		lim.maxExecutionTime = t
	}
	if n := l.OutputSize; n > 0 && (lim.maxOutputSize == 0 || n < lim.maxOutputSize) {
		lim.maxOutputSize = n
	}
	return lim
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

// run carries out a parsed request in workDir: it writes the files, runs the
// build commands and then the run command (once, or once per entry of
// req.Runs), and reports the outcome. start is when the request was read; the
// execution time limit counts from there.
func run(ctx context.Context, req *protocol.AgentRequest, workDir string, lim limits, start time.Time) Result {
	sb := sandboxFrom(ctx)
	tr := traceFrom(ctx)
	lim = lim.lower(req.Limits)
	p, err := planFor(&req.Request)
	if err != nil {
		return Result{Error: err.Error(), Usage: &protocol.Usage{}}
	}
	if lim.maxExecutionTime > 0 {
		var cancel context.CancelFunc
		// At the limit itself: the runner waits a grace period past it
		// for this answer (dockerrun.AnswerGrace).
		ctx, cancel = context.WithDeadlineCause(ctx, start.Add(lim.maxExecutionTime), errTimeLimit)
		defer cancel()
	}
	if err := sb.writeFiles(workDir, req.Files); err != nil {
		return Result{Error: err.Error(), Usage: &protocol.Usage{}}
	}
	tr.Files = now()
	x := &execution{lim: lim, start: start, dir: workDir, env: sb.commandEnv(os.Environ(), workDir), tr: tr, sb: sb}
	build, ok := x.build(ctx, p.build)
	if req.Runs == nil {
		if !ok {
			return build // glot's answer to a failed build
		}
		// glot's answer: the run command's alone; the build's output is
		// left out, and does not count.
		x.used = 0
		out := x.run(ctx, p.run, req.Stdin, 0)
		return Result{Stdout: out.Stdout, Stderr: out.Stderr, Error: out.Error, Duration: out.Duration, Usage: &out.Usage}
	}
	build.Runs = []RunResult{}
	if !ok {
		return build
	}
	for _, in := range req.Runs {
		build.Runs = append(build.Runs, x.run(ctx, p.run, in.Stdin, in.ExecutionTime))
	}
	return build
}

// execution is the state of one request's commands.
type execution struct {
	lim   limits
	start time.Time // when the request was read
	dir   string
	env   []string
	// used is how many bytes of output the answer holds so far; the output
	// limit covers the whole answer.
	used int64
	tr   *trace  // gets the start and exit times of the run command
	sb   sandbox // as whom the commands run, and what is stopped after each
}

// build runs the build commands, one after the other, and returns their
// output, time and usage (CPU time summed, the highest peak memory), and
// whether they all succeeded. A failed build's result is that of the
// command that failed, with "Exit code: N" or the limit in its error, as
// glot's agent answers.
func (x *execution) build(ctx context.Context, scripts []string) (Result, bool) {
	var res Result
	usage := protocol.Usage{}
	res.Usage = &usage
	for _, script := range scripts {
		began := time.Now()
		out := runCommand(ctx, command{script: script, dir: x.dir, env: x.env, maxOutput: x.room(), sb: x.sb})
		d := time.Since(began)
		x.used += int64(len(out.stdout) + len(out.stderr))
		usage.CPUTime += out.usage.CPUTime
		usage.Memory = max(usage.Memory, out.usage.Memory)
		if out.failed() {
			return Result{
				Stdout:   validUTF8(out.stdout),
				Stderr:   validUTF8(out.stderr),
				Error:    out.describe("build", x.lim, time.Since(x.start)),
				Duration: d,
				Usage:    &out.usage,
			}, false
		}
		res.Stdout += validUTF8(out.stdout)
		res.Stderr += validUTF8(out.stderr)
		res.Duration += d
	}
	return res, true
}

// room is the output cap of the next command: what is left of the output
// limit, or 0 (no cap) when there is no limit.
func (x *execution) room() int64 {
	if x.lim.maxOutputSize == 0 {
		return 0
	}
	return max(x.lim.maxOutputSize-x.used, 1)
}

// run runs the run command once with stdin, within its own time limit when
// limit > 0, and reports how it ended.
func (x *execution) run(ctx context.Context, script, stdin string, limit time.Duration) RunResult {
	switch {
	case ctx.Err() != nil:
		return RunResult{Error: fmt.Sprintf("%s the program was not run: the time limit of the request was reached before", timeLimitPrefix)}
	case x.lim.maxOutputSize > 0 && x.used >= x.lim.maxOutputSize:
		return RunResult{Error: fmt.Sprintf("%s the program was not run: the answer already holds %d bytes of output", outputLimitPrefix, x.lim.maxOutputSize)}
	}
	began := time.Now()
	elapsed := func() time.Duration { return time.Since(x.start) }
	if limit > 0 {
		if d, ok := ctx.Deadline(); !ok || began.Add(limit).Before(d) {
			// Its own limit comes first: report this run's time.
			elapsed = func() time.Duration { return time.Since(began) }
		}
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, limit, errTimeLimit)
		defer cancel()
	}
	c := command{script: script, dir: x.dir, env: x.env, maxOutput: x.room(), started: &x.tr.Started, sb: x.sb}
	if stdin != "" {
		c.stdin = strings.NewReader(stdin)
	}
	out := runCommand(ctx, c)
	x.tr.Exited = now()
	d := time.Since(began)
	res := RunResult{
		Stdout:   validUTF8(out.stdout),
		Stderr:   validUTF8(out.stderr),
		Error:    out.describe("program", x.lim, elapsed()),
		Duration: d,
		Usage:    out.usage,
	}
	if out.limit == errOutputLimit && x.used > 0 {
		// Earlier output took part of the limit: say so, not that this
		// run alone wrote it all.
		res.Error = fmt.Sprintf("%s the program was stopped when the answer reached %d bytes of output", outputLimitPrefix, x.lim.maxOutputSize)
	}
	x.used += int64(len(out.stdout) + len(out.stderr))
	return res
}

// validUTF8 returns b as a string with invalid UTF-8 replaced by U+FFFD.
func validUTF8(b []byte) string {
	return strings.ToValidUTF8(string(b), "\uFFFD")
}
