// Package protocol defines the container protocol of dockerrun's images, once:
// the request the runner writes to the agent's stdin, the answer the agent
// writes to its stdout, and the limits the runner hands to the agent. The
// agent (cmd/code-runner), the runner (the root package) and the benchmark
// import it; the root package re-exports the types for library users.
//
// The protocol is glot.io's code-runner protocol (language, files, stdin,
// command, runInstructions; stdout, stderr, error, duration) with dockerrun's
// additions: test cases (runs), resource usage (usage) and per-request limits
// (limits). glot's images ignore the additions.
package protocol

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"
)

// Environment variables set in every container, so that an agent can apply
// the limits itself and return partial output before the runner's hard
// limits kill it. A request's [Limits] may lower them for one run.
const (
	// EnvMaxOutputSize holds the output limit in bytes.
	EnvMaxOutputSize = "DOCKERRUN_MAX_OUTPUT_SIZE"
	// EnvMaxExecutionTime holds the execution time limit in milliseconds.
	EnvMaxExecutionTime = "DOCKERRUN_MAX_EXECUTION_TIME_MS"
)

// Privilege separation. An image labelled LabelPrivsep=1 has an agent that,
// started as root, runs the code as the user named by EnvRunAs; the runner
// then starts it as root with only the capabilities SETUID, SETGID and KILL.
const (
	// LabelPrivsep, set to "1" on an image, says that its agent separates
	// privileges. dockerrun's images carry it; glot's do not.
	LabelPrivsep = "dockerrun.agent.privsep"
	// EnvRunAs names the user (uid[:gid], or a name from the image's
	// /etc/passwd) that the code runs as.
	EnvRunAs = "DOCKERRUN_RUN_AS"
	// EnvNproc, set only with EnvRunAs and under gVisor, is the
	// RLIMIT_NPROC the agent gives the code: inside a gVisor sandbox it
	// counts that sandbox's processes alone. Under runc it counts every
	// process of the host uid, across containers, so it is not set there.
	EnvNproc = "DOCKERRUN_NPROC"
)

// MaxRuns is how many entries [Request.Runs] may have.
const MaxRuns = 100

// Request is what the runner writes to the agent's stdin. Two forms are
// accepted: glot's classic form (Language, Command) and the newer one
// (RunInstructions). When both are present, RunInstructions wins.
type Request struct {
	// Language selects the default build and run commands. It may be empty
	// when Command or RunInstructions is given.
	Language string `json:"language,omitempty"`
	// Files are written into the work directory before anything runs. The
	// first file is the main file for the language defaults.
	Files []File `json:"files"`
	// Stdin is fed to the run command (not to build commands). It may not
	// be given together with Runs.
	Stdin string `json:"stdin,omitempty"`
	// Command, when not empty, replaces the language defaults: it is run
	// with sh -c in the work directory.
	Command string `json:"command,omitempty"`
	// RunInstructions, when present, gives the build and run commands
	// explicitly.
	RunInstructions *RunInstructions `json:"runInstructions,omitempty"`
	// Runs, when present, asks for test cases: the program is built once,
	// then run once per entry, in order, each with its own stdin. It has 1
	// to [MaxRuns] entries. dockerrun's images only; glot's ignore it.
	Runs []RunInput `json:"runs,omitempty"`
	// Trace asks for the times of the agent's steps in the answer's
	// "trace" field, to find where the time of a run goes.
	Trace bool `json:"trace,omitempty"`
}

// File is one file of a [Request].
type File struct {
	// Name is a relative slash-separated path inside the work directory.
	Name string `json:"name"`
	// Content is written as is.
	Content string `json:"content"`
}

// RunInstructions are explicit commands: each build command runs with sh -c,
// one after the other, then the run command.
type RunInstructions struct {
	BuildCommands []string `json:"buildCommands"`
	RunCommand    string   `json:"runCommand"`
}

// RunInput is one test case of [Request.Runs].
type RunInput struct {
	// Stdin is fed to this run of the program.
	Stdin string `json:"stdin"`
	// ExecutionTime, when positive, is this run's own time limit: the agent
	// stops the program at it, reports the limit in this run's error and
	// goes on with the next run. The request's execution time limit still
	// covers the whole container. In JSON "execution_time", in seconds,
	// fractions allowed.
	ExecutionTime time.Duration `json:"-"`
}

// MarshalJSON writes the run with its time limit in seconds.
func (in RunInput) MarshalJSON() ([]byte, error) {
	type plain RunInput
	return json.Marshal(struct {
		plain
		ExecutionTime seconds `json:"execution_time,omitempty"`
	}{plain(in), seconds(in.ExecutionTime)})
}

// UnmarshalJSON reads the run with its time limit in seconds.
func (in *RunInput) UnmarshalJSON(b []byte) error {
	type plain RunInput
	w := struct {
		*plain
		ExecutionTime seconds `json:"execution_time"`
	}{plain: (*plain)(in)}
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	in.ExecutionTime = time.Duration(w.ExecutionTime)
	return nil
}

// An [Answer]'s Error (or a run's) begins with one of these when the agent
// stopped the command at one of its limits.
const (
	ErrorTimeLimit   = "Execution time limit exceeded:"
	ErrorOutputLimit = "Output limit exceeded:"
)

// Answer is the one JSON object the agent writes to stdout. Without Runs,
// Stdout, Stderr, Error, Duration and Usage describe the run command (or the
// build command that failed), as glot's agent answers. With Runs, they
// describe the build, and each run has its own.
type Answer struct {
	// Stdout and Stderr are what the command wrote, as valid UTF-8.
	Stdout string `json:"stdout"`
	Stderr string `json:"stderr"`
	// Error is empty on success; otherwise it says what went wrong: a bad
	// request, "Exit code: N", "Killed by signal: ...", or a limit.
	Error string `json:"error"`
	// Duration is the wall-clock time of the command, in nanoseconds.
	Duration time.Duration `json:"duration"`
	// Usage is the resources the command used; nil in answers of agents
	// that do not report it (glot's).
	Usage *Usage `json:"usage,omitempty"`
	// Runs has one entry per entry of [Request.Runs], in order; empty when
	// the build failed.
	Runs []RunAnswer `json:"runs,omitempty"`
	// Trace, when the request asked for it, is when the agent passed each
	// step of the run.
	Trace *Trace `json:"trace,omitempty"`
}

// Trace is when the agent passed each step of a run, in Unix nanoseconds. A
// container shares the host's clock, so these compare with the runner's own
// timestamps; docs/performance.md uses them to find where the time of a run
// goes. With runs, Started and Exited are those of the last run.
type Trace struct {
	Received int64 `json:"received"` // the first byte of the request was read
	Read     int64 `json:"read"`     // the whole request was read: stdin was closed
	Parsed   int64 `json:"parsed"`   // the request was decoded and checked
	Files    int64 `json:"files"`    // the files were written
	Started  int64 `json:"started"`  // the run command's process was started (exec done)
	Exited   int64 `json:"exited"`   // it exited and its output was collected
	Done     int64 `json:"done"`     // the result was complete, about to be encoded and written
}

// RunAnswer is the outcome of one test case.
type RunAnswer struct {
	Stdout   string        `json:"stdout"`
	Stderr   string        `json:"stderr"`
	Error    string        `json:"error"`
	Duration time.Duration `json:"duration"`
	Usage    Usage         `json:"usage"`
}

// Usage is what a command cost, as the kernel reports it for the process and
// the children it waited for (wait4's rusage).
type Usage struct {
	// CPUTime is user plus system CPU time, in nanoseconds.
	CPUTime time.Duration `json:"cpu_time"`
	// Memory is the peak resident set size in bytes.
	Memory int64 `json:"memory"`
}

// Limits lower a runner's limits for one run. A zero field leaves that limit
// as configured. In JSON (the "limits" of POST /run and of the payload the
// agent reads): {"execution_time": seconds, fractions allowed,
// "output_size": bytes, "memory": bytes}.
type Limits struct {
	// ExecutionTime is the wall-clock limit of the whole run.
	ExecutionTime time.Duration
	// OutputSize caps the bytes read from the container, in bytes.
	OutputSize int64
	// Memory is the container's memory limit, in bytes.
	Memory int64
}

// limitsJSON is the JSON form of [Limits].
type limitsJSON struct {
	ExecutionTime seconds `json:"execution_time,omitempty"`
	OutputSize    int64   `json:"output_size,omitempty"`
	Memory        int64   `json:"memory,omitempty"`
}

// IsZero reports whether l lowers nothing.
func (l Limits) IsZero() bool { return l == Limits{} }

// MarshalJSON writes the limits, the execution time in seconds.
func (l Limits) MarshalJSON() ([]byte, error) {
	return json.Marshal(limitsJSON{seconds(l.ExecutionTime), l.OutputSize, l.Memory})
}

// UnmarshalJSON reads the limits, the execution time in seconds. Unknown
// fields are ignored, so that an agent keeps working with a newer runner;
// [DecodeLimits] refuses them.
func (l *Limits) UnmarshalJSON(b []byte) error {
	var w limitsJSON
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	*l = Limits{time.Duration(w.ExecutionTime), w.OutputSize, w.Memory}
	return nil
}

// DecodeLimits decodes limits strictly, as a server reads them from a
// client: unknown fields and trailing data are errors, so that a misspelt
// limit is not silently ignored.
func DecodeLimits(b []byte) (Limits, error) {
	var w limitsJSON
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&w); err != nil {
		return Limits{}, err
	}
	if dec.More() {
		return Limits{}, errors.New("more than one JSON value")
	}
	return Limits{time.Duration(w.ExecutionTime), w.OutputSize, w.Memory}, nil
}

// seconds is a duration written in JSON as a number of seconds, fractions
// allowed (1.5 is 1.5 s).
type seconds time.Duration

// MarshalJSON writes the duration in seconds.
func (s seconds) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Duration(s).Seconds())
}

// UnmarshalJSON reads a non-negative number of seconds.
func (s *seconds) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		return nil
	}
	var f float64
	if err := json.Unmarshal(b, &f); err != nil {
		return fmt.Errorf("want a number of seconds: %w", err)
	}
	if f < 0 || math.IsNaN(f) || f > float64(math.MaxInt64)/float64(time.Second) {
		return fmt.Errorf("%g seconds is out of range: want 0 or more", f)
	}
	*s = seconds(f * float64(time.Second))
	return nil
}

// limitsField is the payload key of [WithLimits] and [AgentRequest].
const limitsField = `"limits":`

// AgentRequest is what the agent decodes: a [Request] and the limits the
// runner added with [WithLimits].
type AgentRequest struct {
	Request
	// Limits lower the agent's limits from the environment; a limit can
	// only go down this way, whoever wrote it.
	Limits *Limits `json:"limits,omitempty"`
}

// WithLimits returns payload, one JSON object, with a "limits" member holding
// l appended last, so that it replaces a "limits" the payload may already
// have (encoding/json decodes duplicate keys in order, and [Limits] decodes
// as a whole). A zero l returns payload unchanged.
func WithLimits(payload []byte, l Limits) ([]byte, error) {
	if l.IsZero() {
		return payload, nil
	}
	trimmed := bytes.TrimRight(payload, " \t\r\n")
	if len(trimmed) < 2 || trimmed[len(trimmed)-1] != '}' {
		return nil, errors.New("payload is not a JSON object")
	}
	lim, err := json.Marshal(l)
	if err != nil {
		return nil, err
	}
	body := trimmed[:len(trimmed)-1]
	out := make([]byte, 0, len(body)+len(limitsField)+len(lim)+2)
	out = append(out, body...)
	if inner := bytes.TrimSpace(body); len(inner) > 1 { // more than "{"
		out = append(out, ',')
	}
	out = append(out, limitsField...)
	out = append(out, lim...)
	return append(out, '}'), nil
}

// CheckAnswer checks that raw is one JSON object with string fields stdout,
// stderr and error, the fields every agent must write, and returns them.
// Other fields are not looked at: they pass through to clients unchanged.
func CheckAnswer(raw []byte) (stdout, stderr, errText string, err error) {
	var a struct {
		Stdout *string `json:"stdout"`
		Stderr *string `json:"stderr"`
		Error  *string `json:"error"`
	}
	if err := json.Unmarshal(raw, &a); err != nil {
		return "", "", "", fmt.Errorf("decode answer: %w", err)
	}
	var missing []string
	for _, f := range []struct {
		name string
		v    *string
	}{{"stdout", a.Stdout}, {"stderr", a.Stderr}, {"error", a.Error}} {
		if f.v == nil {
			missing = append(missing, f.name)
		}
	}
	if len(missing) > 0 {
		return "", "", "", fmt.Errorf("answer has no %s field", strings.Join(missing, ", "))
	}
	return *a.Stdout, *a.Stderr, *a.Error, nil
}
