package dockerrun

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/dockerrun/dockerrun/internal/protocol"
)

// The typed request and answer of the container protocol that glot's images
// and dockerrun's speak (see docs/images.md). A [Request] can be passed to
// [Runner.Run] as the payload; [Result.Answer] decodes the answer. They are
// the very types the agent of dockerrun's images uses.
type (
	// Request is a payload for glot's images and dockerrun's: files and a
	// language (or a command, or runInstructions), and stdin or runs.
	Request = protocol.Request
	// File is one file of a [Request].
	File = protocol.File
	// RunInstructions gives a [Request]'s build and run commands.
	RunInstructions = protocol.RunInstructions
	// RunInput is one test case of [Request.Runs]: its stdin and, if
	// positive, its own time limit.
	RunInput = protocol.RunInput
	// Answer is a container's answer: stdout, stderr, error, duration and,
	// from dockerrun's images, usage and runs.
	Answer = protocol.Answer
	// RunAnswer is the outcome of one test case, in [Answer.Runs].
	RunAnswer = protocol.RunAnswer
	// Usage is the CPU time and peak memory a command used.
	Usage = protocol.Usage
	// Limits lower a Runner's limits for one run; see [WithLimits].
	Limits = protocol.Limits
	// Trace is when dockerrun's agent passed each step of a run, in an
	// [Answer] of a [Request] with Trace set.
	Trace = protocol.Trace
)

// MaxRuns is how many test cases a [Request] may have.
const MaxRuns = protocol.MaxRuns

// Answer decodes the container's answer, [Result.Raw], into the typed
// [Answer]. Fields that the type does not know are left out; answers of
// glot's images have no Usage and no Runs.
func (r *Result) Answer() (*Answer, error) {
	var a Answer
	if err := json.Unmarshal(r.Raw, &a); err != nil {
		return nil, fmt.Errorf("decode answer: %w", err)
	}
	return &a, nil
}

// RunOption configures one call of [Runner.Run].
type RunOption func(*runConfig)

type runConfig struct {
	limits Limits
}

// WithLimits lowers the Runner's limits for one run: a non-zero field of l
// replaces the configured execution time limit ([WithMaxExecutionTime]),
// output limit ([WithMaxOutputSize]) or memory limit ([WithMemory]), which it
// may not exceed. The runner enforces the lowered limits itself, and passes
// them to the agent in the payload's "limits" member, so that dockerrun's
// agent stops the program first and returns its partial output. A lowered
// memory limit needs a container of its own: such a run never uses the warm
// pool. Run reports invalid limits with [CodeRequestLimits].
func WithLimits(l Limits) RunOption {
	return func(c *runConfig) { c.limits = l }
}

// LimitsOf returns the limits that opts set, for implementations of an
// interface such as httpapi.Runner that wrap a [Runner] or stand in for one.
func LimitsOf(opts ...RunOption) Limits {
	var rc runConfig
	for _, o := range opts {
		o(&rc)
	}
	return rc.limits
}

// runLimits are the limits of one run.
type runLimits struct {
	executionTime time.Duration
	outputSize    int64
	memory        int64
	// lowered is what the request lowered, for the agent.
	lowered Limits
}

// minMemory is the smallest memory limit Docker accepts.
const minMemory = 6 << 20

// limitsFor returns the limits of a run with opts, or an [*Error] with
// [CodeRequestLimits] that names each invalid limit and the maximum.
func (r *Runner) limitsFor(opts []RunOption) (runLimits, error) {
	cfg, l := r.cfg, LimitsOf(opts...)
	lim := runLimits{executionTime: cfg.maxExecutionTime, outputSize: cfg.maxOutputSize, memory: cfg.memory}
	var problems []string
	switch t := l.ExecutionTime; {
	case t < 0:
		problems = append(problems, fmt.Sprintf("execution_time: %v is negative", t))
	case t > cfg.maxExecutionTime:
		problems = append(problems, fmt.Sprintf("execution_time: %v is more than the maximum of %v", t, cfg.maxExecutionTime))
	case t > 0 && t < cfg.maxExecutionTime:
		lim.executionTime, lim.lowered.ExecutionTime = t, t
	}
	switch n := l.OutputSize; {
	case n < 0:
		problems = append(problems, fmt.Sprintf("output_size: %d bytes is negative", n))
	case n > cfg.maxOutputSize:
		problems = append(problems, fmt.Sprintf("output_size: %d bytes is more than the maximum of %d", n, cfg.maxOutputSize))
	case n > 0 && n < cfg.maxOutputSize:
		lim.outputSize, lim.lowered.OutputSize = n, n
	}
	switch n := l.Memory; {
	case n < 0:
		problems = append(problems, fmt.Sprintf("memory: %d bytes is negative", n))
	case n > 0 && n < minMemory:
		problems = append(problems, fmt.Sprintf("memory: %d bytes is less than Docker's minimum of %d (6 MiB)", n, minMemory))
	case cfg.memory > 0 && n > cfg.memory:
		problems = append(problems, fmt.Sprintf("memory: %d bytes is more than the maximum of %d", n, cfg.memory))
	case n > 0 && (cfg.memory == 0 || n < cfg.memory):
		lim.memory, lim.lowered.Memory = n, n
	}
	if len(problems) > 0 {
		return runLimits{}, errorf(CodeRequestLimits, nil, "limits may only lower the server's: %s", strings.Join(problems, "; "))
	}
	return lim, nil
}
