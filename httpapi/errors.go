package httpapi

import (
	"errors"
	"net/http"
	"strings"

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
	CodeInternal         = "internal"
)

// Error is an API error: a status, a stable code and a message.
type Error struct {
	Status  int
	Code    string
	Message string
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// statuses maps the runner's codes to HTTP statuses. The 400s and 500s are
// docker-run's; a code missing here is a 500.
var statuses = map[dockerrun.Code]int{
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
	dockerrun.CodeStreamRead:       http.StatusInternalServerError,
	dockerrun.CodeStdin:            http.StatusInternalServerError,
	dockerrun.CodeAgentStderr:      http.StatusInternalServerError,
	dockerrun.CodeStdoutDecode:     http.StatusInternalServerError,
	dockerrun.CodeBusy:             http.StatusServiceUnavailable,
	dockerrun.CodeClosed:           http.StatusServiceUnavailable,
	dockerrun.CodeCanceled:         499, // the client went away; only logs see it
	dockerrun.CodeInvalidConfig:    http.StatusInternalServerError,
}

// StatusOf returns the HTTP status of a runner error code.
func StatusOf(code dockerrun.Code) int {
	if s, ok := statuses[code]; ok {
		return s
	}
	return http.StatusInternalServerError
}

// AsError turns any error into an API error: an [*Error] as it is, a
// [*dockerrun.Error] with its code and the status of [StatusOf], anything
// else an internal error.
func AsError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	var re *dockerrun.Error
	if errors.As(err, &re) {
		return &Error{Status: StatusOf(re.Code), Code: string(re.Code), Message: strings.TrimPrefix(re.Error(), string(re.Code)+": ")}
	}
	return &Error{Status: http.StatusInternalServerError, Code: CodeInternal, Message: err.Error()}
}
