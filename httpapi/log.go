package httpapi

import (
	"context"
	"log/slog"
	"net/http"
	"time"
)

// outcome is what a handler tells the request log about its request.
type outcome struct {
	err  *Error
	warm bool
}

type outcomeKey struct{}

// setOutcome records the error (nil on success) for the log line.
func setOutcome(r *http.Request, err *Error, warm bool) {
	if o, ok := r.Context().Value(outcomeKey{}).(*outcome); ok {
		o.err, o.warm = err, warm
	}
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(status int) {
	if s.status == 0 {
		s.status = status
	}
	s.ResponseWriter.WriteHeader(status)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

// logged writes one line per request: method, path, status, code,
// duration and, for a server error, its cause. Never the body or the token.
func (a *api) logged(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		o := &outcome{}
		rec := &statusRecorder{ResponseWriter: w}
		next.ServeHTTP(rec, r.WithContext(context.WithValue(r.Context(), outcomeKey{}, o)))
		level := slog.LevelInfo
		if rec.status >= 500 {
			level = slog.LevelError
		}
		attrs := []slog.Attr{
			slog.String("method", r.Method),
			slog.String("path", r.URL.Path),
			slog.Int("status", rec.status),
			slog.Duration("duration", time.Since(start)),
			slog.String("remote", r.RemoteAddr),
		}
		if o.err != nil {
			attrs = append(attrs, slog.String("code", o.err.Code))
			// The cause is for the operator: a server error's, which
			// the client's message leaves out, is logged.
			if o.err.Err != nil && rec.status >= 500 {
				attrs = append(attrs, slog.String("error", o.err.Err.Error()))
			}
		}
		if r.URL.Path == "/run" && rec.status == http.StatusOK {
			attrs = append(attrs, slog.Bool("warm", o.warm))
		}
		a.log.LogAttrs(r.Context(), level, "request", attrs...)
	})
}
