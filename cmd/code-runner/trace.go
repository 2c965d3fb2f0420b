package main

import (
	"context"
	"io"
	"strconv"
	"time"

	"github.com/dockerrun/dockerrun/internal/protocol"
)

// trace is when the agent passed each step of a run; the agent adds it to its
// answer as "trace" when the request asks with "trace": true.
type trace = protocol.Trace

type traceKey struct{}

// withTrace returns ctx carrying tr, which run fills in.
func withTrace(ctx context.Context, tr *trace) context.Context {
	return context.WithValue(ctx, traceKey{}, tr)
}

// traceFrom returns the trace that ctx carries, or a new one that nobody
// reads.
func traceFrom(ctx context.Context) *trace {
	if tr, ok := ctx.Value(traceKey{}).(*trace); ok {
		return tr
	}
	return &trace{}
}

func now() int64 { return time.Now().UnixNano() }

// appendTrace appends the trace as a JSON object, with the keys of
// [protocol.Trace].
func appendTrace(b []byte, t *trace) []byte {
	for i, f := range []struct {
		name string
		v    int64
	}{
		{"received", t.Received}, {"read", t.Read}, {"parsed", t.Parsed}, {"files", t.Files},
		{"started", t.Started}, {"exited", t.Exited}, {"done", t.Done},
	} {
		if i == 0 {
			b = append(b, '{')
		} else {
			b = append(b, ',')
		}
		b = append(b, '"')
		b = append(b, f.name...)
		b = append(b, `":`...)
		b = strconv.AppendInt(b, f.v, 10)
	}
	return append(b, '}')
}

// firstByteReader notes when the first byte was read.
type firstByteReader struct {
	r       io.Reader
	first   int64
	firstAt time.Time // the same, with the monotonic clock
}

func (f *firstByteReader) Read(p []byte) (int, error) {
	n, err := f.r.Read(p)
	if n > 0 && f.first == 0 {
		f.firstAt = time.Now()
		f.first = f.firstAt.UnixNano()
	}
	return n, err
}
