// Package dockerrun runs untrusted code in transient Docker containers.
//
// A [Runner] creates a fresh container from a language image for every run,
// writes a JSON payload to the container's stdin, reads exactly one JSON
// object (with at least "stdout", "stderr" and "error") from its stdout and
// removes the container, whatever happened. This is the container protocol of
// glot.io's docker-run and of the code-runner agent in glot's images, so
// those images work unchanged.
//
// Limits are honest: the execution time limit is a wall-clock deadline
// enforced by killing the container, the output limit caps the bytes read
// from the container, and a container killed for memory is reported as such.
// Every failure is an [*Error] carrying a stable [Code]:
//
//	res, err := r.Run(ctx, "dockerrun/python:latest", payload)
//	if errors.Is(err, dockerrun.ErrExecutionTime) {
//		// the code ran too long and was killed
//	}
package dockerrun

import (
	"encoding/json"
	"errors"
	"fmt"
	"runtime/debug"
	"time"
)

// Result is what a container answered for one run.
type Result struct {
	// Stdout is the "stdout" field of the container's answer.
	Stdout string
	// Stderr is the "stderr" field of the container's answer.
	Stderr string
	// Error is the "error" field of the container's answer: a non-empty
	// value reports a failure of the user's code (a compile error, a
	// non-zero exit), not of the runner.
	Error string
	// Raw is the container's whole answer, a JSON object, exactly as it was
	// read. Fields other than stdout, stderr and error (such as "duration")
	// are only here.
	Raw json.RawMessage
	// Duration is how long the run took, from writing the payload to reading
	// the answer.
	Duration time.Duration
	// Warm reports whether the run used a container started ahead of time by
	// the warm pool.
	Warm bool
	// Timing is when the run passed each of its steps.
	Timing Timing
}

// Code is a stable, machine-readable error code. The codes are those of
// glot.io's docker-run where it has one, so that its clients keep working.
type Code string

// Error codes. They are part of the API: they never change meaning.
const (
	// CodeDockerUnixSocket: the Docker daemon could not be reached, or went
	// away during the run (a restart or a crash of the daemon).
	CodeDockerUnixSocket Code = "docker.unixsocket"
	// CodeContainerCreate: the daemon refused to create the container, most
	// often because the image does not exist locally.
	CodeContainerCreate Code = "docker.container.create"
	// CodeContainerStart: the daemon could not start the container.
	CodeContainerStart Code = "docker.container.start"
	// CodeContainerRemove: the daemon did not remove a container, or
	// [Runner.Close] gave up waiting for removals before they ended. The
	// container is left behind for [Runner.Reap].
	CodeContainerRemove Code = "docker.container.remove"
	// CodeContainerAttach: attaching to the container's streams failed.
	CodeContainerAttach Code = "docker.container.attach"
	// CodePayloadSerialize: the payload is not one JSON object.
	CodePayloadSerialize Code = "docker.container.stream.payload.serialize"
	// CodeStreamRead: reading the container's output stream failed, or the
	// stream was malformed, or the daemon cut it while the container ran,
	// or the container was removed from outside during the run.
	CodeStreamRead Code = "docker.container.stream.read"
	// CodeExecutionTime: the run exceeded its execution time limit and the
	// container was killed.
	CodeExecutionTime Code = "limits.execution_time"
	// CodeOutputSize: the container wrote more than the output limit and was
	// killed.
	CodeOutputSize Code = "limits.read.size"
	// CodeMemory: the kernel killed the container for exceeding its memory
	// limit before it answered.
	CodeMemory Code = "limits.memory"
	// CodeStdin: writing the payload to the container's stdin failed.
	CodeStdin Code = "coderunner.stdin"
	// CodeAgentStderr: the image's agent wrote to stderr, which means the
	// agent itself failed (the user's stderr is inside the JSON answer).
	CodeAgentStderr Code = "coderunner.stderr"
	// CodeStdoutDecode: the container's stdout was not one JSON object with
	// string fields stdout, stderr and error.
	CodeStdoutDecode Code = "coderunner.stdout.decode"
	// CodeImageNotAllowed: the image is not on the runner's allow-list, or
	// the name is not a plain local image reference.
	CodeImageNotAllowed Code = "image.not_allowed"
	// CodeCanceled: the caller cancelled the run (for example an HTTP client
	// went away); the container was killed.
	CodeCanceled Code = "run.canceled"
	// CodeBusy: every place was taken and the wait queue was full, or the
	// run waited longer than the queue allows. Try again later.
	CodeBusy Code = "runner.busy"
	// CodeClosed: the runner was closed.
	CodeClosed Code = "runner.closed"
	// CodeInvalidConfig: an option given to [New] is invalid.
	CodeInvalidConfig Code = "config.invalid"
	// CodeRequestLimits: the limits of a run ([WithLimits]) are invalid or
	// higher than the runner's.
	CodeRequestLimits Code = "request.limits"
)

// Error is the error type of every failure of a [Runner]. It carries a
// stable [Code], a message for people and, where there is one, the cause.
type Error struct {
	// Code is the stable error code.
	Code Code
	// Message says what went wrong and, where it helps, what to do.
	Message string
	// Err is the underlying cause, if any (a Docker client error, an I/O
	// error). It is kept so that callers can inspect it with errors.As.
	Err error
}

// Error returns "CODE: MESSAGE: CAUSE".
func (e *Error) Error() string {
	s := string(e.Code)
	if e.Message != "" {
		s += ": " + e.Message
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Is reports whether target is an [*Error] with the same code and no message
// of its own, which is how the Err* sentinels match.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Message == "" && t.Err == nil && t.Code == e.Code
}

// Sentinels to match with errors.Is; each matches every [*Error] with its
// code.
var (
	ErrDockerUnixSocket = &Error{Code: CodeDockerUnixSocket}
	ErrContainerCreate  = &Error{Code: CodeContainerCreate}
	ErrContainerStart   = &Error{Code: CodeContainerStart}
	ErrContainerAttach  = &Error{Code: CodeContainerAttach}
	ErrContainerRemove  = &Error{Code: CodeContainerRemove}
	ErrPayloadSerialize = &Error{Code: CodePayloadSerialize}
	ErrStreamRead       = &Error{Code: CodeStreamRead}
	ErrExecutionTime    = &Error{Code: CodeExecutionTime}
	ErrOutputSize       = &Error{Code: CodeOutputSize}
	ErrMemory           = &Error{Code: CodeMemory}
	ErrStdin            = &Error{Code: CodeStdin}
	ErrAgentStderr      = &Error{Code: CodeAgentStderr}
	ErrStdoutDecode     = &Error{Code: CodeStdoutDecode}
	ErrImageNotAllowed  = &Error{Code: CodeImageNotAllowed}
	ErrCanceled         = &Error{Code: CodeCanceled}
	ErrBusy             = &Error{Code: CodeBusy}
	ErrClosed           = &Error{Code: CodeClosed}
	ErrInvalidConfig    = &Error{Code: CodeInvalidConfig}
	ErrRequestLimits    = &Error{Code: CodeRequestLimits}
)

// Version returns the version of this module in the running binary, or
// "devel" when it was built from a work tree.
func Version() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "devel"
	}
	if bi.Main.Path == modulePath && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	for _, d := range bi.Deps {
		if d.Path == modulePath {
			return d.Version
		}
	}
	return "devel"
}

const modulePath = "github.com/dockerrun/dockerrun"

// ErrorCode returns the code of the first [*Error] in err's chain, or "" if
// there is none.
func ErrorCode(err error) Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

// errorf returns an *Error with the given code, a formatted message and the
// cause.
func errorf(code Code, cause error, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...), Err: cause}
}
