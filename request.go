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

// limitsFor returns the limits of a run with opts, or an [*Error] with
// [CodeRequestLimits] that names each invalid limit and the maximum.
func (r *Runner) limitsFor(opts []RunOption) (runLimits, error) {
	cfg, l := r.cfg, LimitsOf(opts...)
	var lim runLimits
	var problems []string
	var ok bool
	if lim.executionTime, ok = lowerLimit(&problems, "execution_time", "", l.ExecutionTime, cfg.maxExecutionTime, 0); ok {
		lim.lowered.ExecutionTime = lim.executionTime
	}
	if lim.outputSize, ok = lowerLimit(&problems, "output_size", " bytes", l.OutputSize, cfg.maxOutputSize, 0); ok {
		lim.lowered.OutputSize = lim.outputSize
	}
	if lim.memory, ok = lowerLimit(&problems, "memory", " bytes", l.Memory, cfg.memory, minMemory); ok {
		lim.lowered.Memory = lim.memory
	}
	if len(problems) > 0 {
		return runLimits{}, errorf(CodeRequestLimits, nil, "limits may only lower the server's: %s", strings.Join(problems, "; "))
	}
	return lim, nil
}

// lowerLimit checks a requested limit (0: not requested) against the
// configured one (0: none) and the least allowed, and returns the limit to
// apply and whether the request lowers it. An invalid request adds a
// problem that names the limit and returns the configured one.
func lowerLimit[T ~int64](problems *[]string, name, unit string, want, configured, least T) (T, bool) {
	switch {
	case want < 0:
		*problems = append(*problems, fmt.Sprintf("%s: %v%s is negative", name, want, unit))
	case want > 0 && want < least:
		*problems = append(*problems, fmt.Sprintf("%s: %v%s is less than the minimum of %v%s", name, want, unit, least, unit))
	case configured > 0 && want > configured:
		*problems = append(*problems, fmt.Sprintf("%s: %v%s is more than the maximum of %v%s", name, want, unit, configured, unit))
	case want > 0 && (configured == 0 || want < configured):
		return want, true
	}
	return configured, false
}
