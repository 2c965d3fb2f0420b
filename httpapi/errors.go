package httpapi

import (
	"errors"
	"net/http"

	"github.com/dockerrun/dockerrun"
)

// Error codes of the HTTP layer, besides the runner's ([dockerrun.Code]).
const (
	CodeAccessToken      = "access_token"
	CodeRequestParse     = "request.parse"
	CodeRequestInvalid   = "request.invalid"
	CodeRequestTooLarge  = "request.too_large"
	CodeNotFound         = "route.not_found"
	CodeMethodNotAllowed = "route.method_not_allowed"
	CodeUnhealthy        = "unhealthy"
	CodeNotReady         = "not_ready"
	CodeInternal         = "internal"
)

// Error is an API error: a stable code and a message for the client. Its
// HTTP status is the code's in the one table ([StatusOf]).
type Error struct {
	Code    string
	Message string
	// Err is the cause, for the server's log; clients never see it.
	Err error
}

func (e *Error) Error() string {
	s := e.Code + ": " + e.Message
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Status returns the HTTP status of the error's code.
func (e *Error) Status() int { return StatusOf(dockerrun.Code(e.Code)) }

// statuses maps every code to its HTTP status. The 400s and 500s of the
// runner's codes are docker-run's; a code missing here is a 500.
var statuses = map[dockerrun.Code]int{
	CodeAccessToken:      http.StatusUnauthorized,
	CodeRequestParse:     http.StatusBadRequest,
	CodeRequestInvalid:   http.StatusBadRequest,
	CodeRequestTooLarge:  http.StatusRequestEntityTooLarge,
	CodeNotFound:         http.StatusNotFound,
	CodeMethodNotAllowed: http.StatusMethodNotAllowed,
	CodeUnhealthy:        http.StatusServiceUnavailable,
	CodeNotReady:         http.StatusServiceUnavailable,
	CodeInternal:         http.StatusInternalServerError,

	dockerrun.CodeContainerCreate:  http.StatusBadRequest,
	dockerrun.CodePayloadSerialize: http.StatusBadRequest,
	dockerrun.CodeExecutionTime:    http.StatusBadRequest,
	dockerrun.CodeOutputSize:       http.StatusBadRequest,
	dockerrun.CodeMemory:           http.StatusBadRequest,
	dockerrun.CodeImageNotAllowed:  http.StatusBadRequest,
	dockerrun.CodeRequestLimits:    http.StatusBadRequest,
	dockerrun.CodeDockerUnixSocket: http.StatusInternalServerError,
	dockerrun.CodeContainerStart:   http.StatusInternalServerError,
	dockerrun.CodeContainerAttach:  http.StatusInternalServerError,
	dockerrun.CodeContainerRemove:  http.StatusInternalServerError,
	dockerrun.CodeStreamRead:       http.StatusInternalServerError,
	dockerrun.CodeStdin:            http.StatusInternalServerError,
	dockerrun.CodeAgentStderr:      http.StatusInternalServerError,
	dockerrun.CodeStdoutDecode:     http.StatusInternalServerError,
	dockerrun.CodeBusy:             http.StatusServiceUnavailable,
	dockerrun.CodeClosed:           http.StatusServiceUnavailable,
	dockerrun.CodeCanceled:         499, // the client went away; only logs see it
	dockerrun.CodeInvalidConfig:    http.StatusInternalServerError,
}

// StatusOf returns the HTTP status of an error code, the runner's or the
// HTTP layer's.
func StatusOf(code dockerrun.Code) int {
	if s, ok := statuses[code]; ok {
		return s
	}
	return http.StatusInternalServerError
}

// AsError turns any error into an API error: an [*Error] as it is, a
// [*dockerrun.Error] with its code and message (its cause, which may hold
// the Docker daemon's own words, stays in Err for the log), anything else
// an internal error whose text only the log sees.
func AsError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	var re *dockerrun.Error
	if errors.As(err, &re) {
		msg := re.Message
		if msg == "" {
			msg = string(re.Code)
		}
		return &Error{Code: string(re.Code), Message: msg, Err: err}
	}
	return &Error{Code: CodeInternal, Message: "internal error: the server's log has the details", Err: err}
}
