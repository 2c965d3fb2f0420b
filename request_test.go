package dockerrun

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// payloadOf returns the payload that the container of res received, which
// the fake's answer carries.
func payloadOf(t *testing.T, res *Result) string {
	t.Helper()
	var a struct{ Payload json.RawMessage }
	if err := json.Unmarshal(res.Raw, &a); err != nil {
		t.Fatalf("answer %s: %v", res.Raw, err)
	}
	return string(a.Payload)
}

func TestRunLimitsLowered(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		limits  Limits
		payload string
		want    Code // "" for an answer
		inMsg   string
		// wantPayload is what the container reads, for an answer.
		wantPayload string
		wantMemory  int64
	}{
		{name: "no limits: the payload is sent as it is", payload: `{"mode":"echo"}`,
			wantPayload: `{"mode":"echo"}`, wantMemory: DefaultMemory},
		{name: "limits at the maximum lower nothing", payload: `{"mode":"echo"}`,
			limits:      Limits{ExecutionTime: 5 * time.Second, OutputSize: 8192, Memory: DefaultMemory},
			wantPayload: `{"mode":"echo"}`, wantMemory: DefaultMemory},
		{name: "lowered limits reach the agent", payload: `{"mode":"echo"}`,
			limits:      Limits{ExecutionTime: 1500 * time.Millisecond, OutputSize: 4000, Memory: 64 << 20},
			wantPayload: `{"mode":"echo","limits":{"execution_time":1.5,"output_size":4000,"memory":67108864}}`, wantMemory: 64 << 20},
		{name: "lowered execution time is enforced", payload: `{"mode":"sleep"}`, limits: Limits{ExecutionTime: 100 * time.Millisecond},
			want: CodeExecutionTime, inMsg: "longer than 100ms"},
		{name: "lowered output size is enforced", payload: `{"mode":"flood"}`, limits: Limits{OutputSize: 2048},
			want: CodeOutputSize, inMsg: "more than 2048 bytes"},
		{name: "lowered memory is reported", payload: `{"mode":"oom"}`, limits: Limits{Memory: 64 << 20},
			want: CodeMemory, inMsg: "memory limit of 67108864 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFakeDocker()
			r := newTestRunner(t, f, WithMaxOutputSize(8192))
			res, err := r.Run(context.Background(), "fake/img", json.RawMessage(tt.payload), WithLimits(tt.limits))
			if tt.want != "" {
				if ErrorCode(err) != tt.want || !strings.Contains(err.Error(), tt.inMsg) {
					t.Fatalf("Run() error = %v, want code %s with %q", err, tt.want, tt.inMsg)
				}
				return
			}
			if err != nil {
				t.Fatalf("Run() error: %v", err)
			}
			if got := payloadOf(t, res); got != tt.wantPayload {
				t.Errorf("container read %s, want %s", got, tt.wantPayload)
			}
			_, host := f.config(res.Stdout)
			if host.Memory != tt.wantMemory || host.MemorySwap != tt.wantMemory {
				t.Errorf("container memory = %d, swap %d, want %d for both", host.Memory, host.MemorySwap, tt.wantMemory)
			}
		})
	}
}

func TestRunLimitsInvalid(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		opts    []Option
		limits  Limits
		wantMsg string
	}{
		{name: "higher execution time", limits: Limits{ExecutionTime: 6 * time.Second},
			wantMsg: "request.limits: limits may only lower the server's: execution_time: 6s is more than the maximum of 5s"},
		{name: "all three wrong", limits: Limits{ExecutionTime: -time.Second, OutputSize: 1 << 30, Memory: 1 << 20},
			wantMsg: "request.limits: limits may only lower the server's: execution_time: -1s is negative; " +
				"output_size: 1073741824 bytes is more than the maximum of 1048576 bytes; memory: 1048576 bytes is less than the minimum of 6291456 bytes"},
		{name: "negative sizes", limits: Limits{OutputSize: -1, Memory: -1},
			wantMsg: "request.limits: limits may only lower the server's: output_size: -1 bytes is negative; memory: -1 bytes is negative"},
		{name: "higher memory", limits: Limits{Memory: DefaultMemory + 1},
			wantMsg: "request.limits: limits may only lower the server's: memory: 536870913 bytes is more than the maximum of 536870912 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFakeDocker()
			r := newTestRunner(t, f, tt.opts...)
			_, err := r.Run(context.Background(), "fake/img", map[string]any{"mode": "echo"}, WithLimits(tt.limits))
			if !errors.Is(err, ErrRequestLimits) || err.Error() != tt.wantMsg {
				t.Errorf("Run() error = %v, want %q", err, tt.wantMsg)
			}
			if n := f.count("create"); n != 0 {
				t.Errorf("Run() created %d containers for invalid limits", n)
			}
		})
	}
	// Without a memory limit, any memory limit lowers it.
	f := newFakeDocker()
	r := newTestRunner(t, f, WithMemory(0))
	res, err := r.Run(context.Background(), "fake/img", map[string]any{"mode": "echo"}, WithLimits(Limits{Memory: 32 << 20}))
	if err != nil {
		t.Fatalf("Run() error: %v", err)
	}
	if _, host := f.config(res.Stdout); host.Memory != 32<<20 {
		t.Errorf("container memory = %d, want %d", host.Memory, 32<<20)
	}
}

// TestRunLimitsWarmPool checks that lowered time and output limits use a warm
// container (they reach it in the payload), and that a lowered memory limit
// runs in a container of its own.
func TestRunLimitsWarmPool(t *testing.T) {
	t.Parallel()
	f := newFakeDocker()
	r := newTestRunner(t, f, WithWarmPool(map[string]int{"fake/img": 1}))
	for _, tt := range []struct {
		limits   Limits
		wantWarm bool
	}{
		{limits: Limits{ExecutionTime: time.Second, OutputSize: 1000}, wantWarm: true},
		{limits: Limits{Memory: 64 << 20}, wantWarm: false},
	} {
		waitFor(t, 5*time.Second, "the pool to fill", func() bool { return poolSize(r, "fake/img") == 1 })
		res, err := r.Run(context.Background(), "fake/img", map[string]any{"mode": "echo"}, WithLimits(tt.limits))
		if err != nil {
			t.Fatalf("Run(%+v) error: %v", tt.limits, err)
		}
		if res.Warm != tt.wantWarm {
			t.Errorf("Run(%+v) Warm = %v, want %v", tt.limits, res.Warm, tt.wantWarm)
		}
	}
}

// TestResultAnswer checks that an agent's answer reaches the caller whole,
// fields unknown to the runner included, and decodes into the typed Answer.
func TestResultAnswer(t *testing.T) {
	t.Parallel()
	const raw = `{"stdout":"","stderr":"built\n","error":"","duration":5,"usage":{"cpu_time":7,"memory":8},` +
		`"runs":[{"stdout":"a","stderr":"","error":"Exit code: 1","duration":3,"usage":{"cpu_time":1,"memory":2}}],` +
		`"future_field":{"x":[1,2]}}`
	f := newFakeDocker()
	f.programs["fake/img"] = func(p *fakeProc) (int, bool) {
		if _, err := p.readPayload(); err != nil {
			return 1, false
		}
		p.write(streamStdout, raw+"\n")
		return 0, false
	}
	r := newTestRunner(t, f)
	payload := Request{Command: "cat", Files: []File{{Name: "x", Content: "y"}}, Runs: []RunInput{{Stdin: "a"}}}
	res, err := r.Run(context.Background(), "fake/img", payload)
	if err != nil {
		t.Fatalf("Run() error: %v", err)
	}
	if string(res.Raw) != raw {
		t.Errorf("Run() Raw = %s, want the answer unchanged: %s", res.Raw, raw)
	}
	got, err := res.Answer()
	if err != nil {
		t.Fatalf("Answer() error: %v", err)
	}
	want := &Answer{Stderr: "built\n", Duration: 5, Usage: &Usage{CPUTime: 7, Memory: 8},
		Runs: []RunAnswer{{Stdout: "a", Error: "Exit code: 1", Duration: 3, Usage: Usage{CPUTime: 1, Memory: 2}}}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Answer() mismatch (-want +got):\n%s", diff)
	}
	// The typed request went out as glot's protocol.
	var sent map[string]any
	f.mu.Lock()
	for _, c := range f.all {
		json.Unmarshal(c.payload, &sent)
	}
	f.mu.Unlock()
	wantSent := map[string]any{"command": "cat", "files": []any{map[string]any{"name": "x", "content": "y"}}, "runs": []any{map[string]any{"stdin": "a"}}}
	if diff := cmp.Diff(wantSent, sent); diff != "" {
		t.Errorf("payload mismatch (-want +got):\n%s", diff)
	}
}
