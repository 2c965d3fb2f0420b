package main

import (
	"context"
	"io"
	"strconv"
	"time"
)

// trace is when the agent passed each step of a run, in Unix nanoseconds. A
// container shares the host's clock, so these compare with the runner's own
// timestamps. The agent adds it to its answer as "trace" when the request
// asks with "trace": true; docs/performance.md uses it to find where the
// time of a run goes.
type trace struct {
	Received int64 // the first byte of the request was read
	Read     int64 // the whole request was read: stdin was closed
	Parsed   int64 // the request was decoded and checked
	Files    int64 // the files were written
	Started  int64 // the run command's process was started (exec done)
	Exited   int64 // it exited and its output was collected
	Done     int64 // the result was complete, about to be encoded and written
}

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

// appendJSON appends the trace as a JSON object.
func (t *trace) appendJSON(b []byte) []byte {
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
	r     io.Reader
	first int64
}

func (f *firstByteReader) Read(p []byte) (int, error) {
	n, err := f.r.Read(p)
	if n > 0 && f.first == 0 {
		f.first = now()
	}
	return n, err
}
