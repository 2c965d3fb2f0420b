package main

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestPhasesOverHTTP(t *testing.T) {
	ms := func(f float64) time.Duration { return time.Duration(f * float64(time.Millisecond)) }
	p := phases{total: ms(30)}
	if err := p.fromServerTiming("read;dur=0.5, wait;dur=0.25, write;dur=0.125, container;dur=27, decode;dur=0.125"); err != nil {
		t.Fatal(err)
	}
	// The agent: received at 1 ms, done at 25 ms (of its own clock).
	p.addTrace([]byte(`{"stdout":"hello\n","trace":{"received":1000000,"read":1100000,"parsed":1200000,"files":1300000,"started":3300000,"exited":24300000,"done":25000000}}`))
	got := map[string]time.Duration{
		"http": p.http(), "relay": p.relay, "agentRead": p.agentRead, "parse": p.parse, "files": p.files,
		"start": p.start, "program": p.program, "answer": p.answer,
	}
	want := map[string]time.Duration{
		"http": ms(2), "relay": ms(3), "agentRead": ms(0.1), "parse": ms(0.1), "files": ms(0.1),
		"start": ms(2), "program": ms(21), "answer": ms(0.7),
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("phases mismatch (-want +got):\n%s", diff)
	}
	if !p.traced || p.split {
		t.Errorf("traced, split = %v, %v; want true, false", p.traced, p.split)
	}
}

func TestServerTimingErrors(t *testing.T) {
	for _, h := range []string{"", "read;dur=x", "read;dur=1, wait;dur=1"} {
		var p phases
		if err := p.fromServerTiming(h); err == nil {
			t.Errorf("fromServerTiming(%q) succeeded, want an error", h)
		}
	}
}
