package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/dockerrun/dockerrun/internal/protocol"
	"github.com/google/go-cmp/cmp"
)

func decodeResult(t *testing.T, b []byte) Result {
	t.Helper()
	if n := strings.Count(string(b), "\n"); n != 1 || b[len(b)-1] != '\n' {
		t.Fatalf("encoded result is not one line: %q", b)
	}
	var r Result
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatalf("encoded result is not JSON: %v: %q", err, b)
	}
	return r
}

func TestEncode(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   Result
		want Result
	}{
		{
			name: "runs",
			in: Result{Stderr: "warning", Runs: []RunResult{{Stdout: "a", Duration: 5, Usage: protocol.Usage{CPUTime: 1, Memory: 2}},
				{Stderr: "b\x80", Error: "Exit code: 1"}}},
			want: Result{Stderr: "warning", Usage: &protocol.Usage{}, Runs: []RunResult{{Stdout: "a", Duration: 5, Usage: protocol.Usage{CPUTime: 1, Memory: 2}},
				{Stderr: "b\uFFFD", Error: "Exit code: 1"}}},
		},
		{
			name: "build failed: no runs",
			in:   Result{Error: "Exit code: 1", Runs: []RunResult{}},
			want: Result{Error: "Exit code: 1", Usage: &protocol.Usage{}, Runs: []RunResult{}},
		},
		{
			name: "plain",
			in:   Result{Stdout: "hello\n", Stderr: "warn\n", Error: "Exit code: 1", Duration: 1234567, Usage: &protocol.Usage{CPUTime: 5e6, Memory: 3 << 20}},
			want: Result{Stdout: "hello\n", Stderr: "warn\n", Error: "Exit code: 1", Duration: 1234567, Usage: &protocol.Usage{CPUTime: 5e6, Memory: 3 << 20}},
		},
		{
			name: "escapes and HTML characters",
			in:   Result{Stdout: "\"q\" \\ <a>&\t\r\n\x00\x01\x1f\x7f \b\f", Stderr: "\u2028 é 日本 🎉"},
			want: Result{Stdout: "\"q\" \\ <a>&\t\r\n\x00\x01\x1f\x7f \b\f", Stderr: "\u2028 é 日本 🎉", Usage: &protocol.Usage{}},
		},
		{
			name: "invalid UTF-8 becomes U+FFFD",
			in:   Result{Stdout: "a\xffb\xc3", Stderr: "\xe6\x97", Error: "x\x80"},
			want: Result{Stdout: "a\uFFFDb\uFFFD", Stderr: "\uFFFD", Error: "x\uFFFD", Usage: &protocol.Usage{}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := decodeResult(t, tt.in.encode(0))
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("encode() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestJSONLen(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"", "abc", "\"\\\n\r\t\b\f\x00\x1f", "\xff\xfe", "é日🎉", "\xe6\x97", "a\xc3(b", strings.Repeat("\x01é\xff", 50)} {
		enc := appendJSONString(nil, s)
		if got, want := jsonLen(s), int64(len(enc)-2); got != want {
			t.Errorf("jsonLen(%q) = %d, want %d (encoded %s)", s, got, want, enc)
		}
		var back string
		if err := json.Unmarshal(enc, &back); err != nil {
			t.Errorf("appendJSONString(%q) = %s: not a JSON string: %v", s, enc, err)
		}
		if want := strings.ToValidUTF8(s, "\uFFFD"); utf8.ValidString(s) && back != want {
			t.Errorf("appendJSONString(%q) decodes to %q", s, back)
		}
	}
}

func TestShareRoom(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		room  int64
		sizes []int64
		want  []int64
	}{
		{name: "all fit", room: 100, sizes: []int64{10, 20, 30}, want: []int64{10, 20, 30}},
		{name: "small ones keep all", room: 100, sizes: []int64{10, 500, 500}, want: []int64{10, 45, 45}},
		{name: "leftover goes to the big one", room: 100, sizes: []int64{10, 20, 500}, want: []int64{10, 20, 70}},
		{name: "empty fields get nothing", room: 100, sizes: []int64{0, 500, 0}, want: []int64{0, 100, 0}},
		{name: "no room", room: -5, sizes: []int64{10, 10, 10}, want: []int64{0, 0, 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := shareRoom(tt.room, tt.sizes)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("shareRoom() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// TestEncodeLimit checks that an encoded result always stays under the limit,
// stays valid JSON, keeps prefixes of the fields, and says that it was cut.
func TestEncodeLimit(t *testing.T) {
	t.Parallel()
	big := strings.Repeat("x", 10000)
	escapes := strings.Repeat("\x01\"", 5000) // 6 and 2 bytes each when encoded
	multi := strings.Repeat("日本🎉", 1000)
	tests := []struct {
		name string
		in   Result
	}{
		{name: "big stdout", in: Result{Stdout: big, Duration: time.Second}},
		{name: "big stdout and stderr", in: Result{Stdout: big, Stderr: big, Error: "Exit code: 2"}},
		{name: "expanding escapes", in: Result{Stdout: escapes, Stderr: "short"}},
		{name: "multibyte runes", in: Result{Stdout: multi, Stderr: multi}},
		{name: "invalid UTF-8", in: Result{Stdout: strings.Repeat("\xff", 5000)}},
		{name: "long error", in: Result{Error: "decode request: " + big}},
		{name: "output limit error kept", in: Result{Stdout: big, Error: "Output limit exceeded: the program wrote more than 500 bytes and was stopped"}},
	}
	for _, tt := range tests {
		for _, limit := range []int64{100, 150, 500, 1000, 4096, 30000} {
			t.Run(fmt.Sprintf("%s/%d", tt.name, limit), func(t *testing.T) {
				t.Parallel()
				b := tt.in.encode(limit)
				if int64(len(b)) >= limit {
					t.Fatalf("encode(%d) wrote %d bytes, want fewer than %d", limit, len(b), limit)
				}
				got := decodeResult(t, b)
				if full := tt.in.encode(0); int64(len(full)) < limit {
					if !bytes.Equal(b, full) {
						t.Errorf("encode(%d) = %q, want it unchanged: %q", limit, b, full)
					}
					return
				}
				for _, f := range []struct{ name, got, orig string }{
					{"stdout", got.Stdout, tt.in.Stdout},
					{"stderr", got.Stderr, tt.in.Stderr},
				} {
					if !strings.HasPrefix(strings.ToValidUTF8(f.orig, "\uFFFD"), f.got) {
						t.Errorf("encode(%d) %s = %.40q..., not a prefix of the original", limit, f.name, f.got)
					}
				}
				if limit >= 500 && !strings.HasPrefix(got.Error, "Output limit exceeded:") {
					t.Errorf("encode(%d) error = %q, want an output limit message", limit, got.Error)
				}
				if kept := jsonLen(got.Stdout) + jsonLen(got.Stderr) + jsonLen(got.Error); limit >= 4096 && kept < limit*3/4 {
					t.Errorf("encode(%d) kept only %d encoded bytes of output", limit, kept)
				}
				if got.Duration != tt.in.Duration {
					t.Errorf("encode(%d) duration = %v, want %v", limit, got.Duration, tt.in.Duration)
				}
			})
		}
	}
}

func TestEncodeLimitFits(t *testing.T) {
	t.Parallel()
	r := Result{Stdout: "hello\n", Error: "Exit code: 1", Usage: &protocol.Usage{CPUTime: 1, Memory: 2}}
	full := r.encode(0)
	// Exactly one byte more than needed: nothing is cut.
	got := decodeResult(t, r.encode(int64(len(full))+1))
	if diff := cmp.Diff(r, got); diff != "" {
		t.Errorf("encode() mismatch (-want +got):\n%s", diff)
	}
	// At exactly the size, the object is cut to stay strictly under.
	if b := r.encode(int64(len(full))); len(b) >= len(full) {
		t.Errorf("encode(%d) wrote %d bytes", len(full), len(b))
	}
}

// TestEncodeLimitRuns checks the output limit over an answer with runs: the
// whole line stays under it, each field keeps a prefix of its text, and the
// runs whose output was cut, and only those, say so in their error.
func TestEncodeLimitRuns(t *testing.T) {
	t.Parallel()
	big := strings.Repeat("x", 3000)
	in := Result{Stdout: "built\n", Runs: []RunResult{
		{Stdout: "short"},
		{Stdout: big, Stderr: big, Error: "Exit code: 1"},
		{Stdout: "also short", Usage: protocol.Usage{CPUTime: 7, Memory: 8}},
		{Stdout: big},
	}}
	const limit = 2000
	b := in.encode(limit)
	if len(b) >= limit {
		t.Fatalf("encode(%d) wrote %d bytes", limit, len(b))
	}
	got := decodeResult(t, b)
	if len(got.Runs) != len(in.Runs) {
		t.Fatalf("encode() kept %d runs, want %d", len(got.Runs), len(in.Runs))
	}
	if got.Stdout != in.Stdout || got.Error != "" {
		t.Errorf("encode() top level = %q, %q, want it whole", got.Stdout, got.Error)
	}
	const note = "Output limit exceeded: the output does not fit in 2000 bytes and was truncated"
	wantErr := []string{"", note + "; Exit code: 1", "", note}
	for i, r := range got.Runs {
		if !strings.HasPrefix(in.Runs[i].Stdout, r.Stdout) || !strings.HasPrefix(in.Runs[i].Stderr, r.Stderr) {
			t.Errorf("run %d output = %.40q, %.40q, not a prefix of the original", i, r.Stdout, r.Stderr)
		}
		if r.Error != wantErr[i] {
			t.Errorf("run %d error = %q, want %q", i, r.Error, wantErr[i])
		}
	}
	if got.Runs[0].Stdout != "short" || got.Runs[2] != in.Runs[2] {
		t.Errorf("encode() cut short runs: %+v, %+v", got.Runs[0], got.Runs[2])
	}
	if n := len(got.Runs[3].Stdout); n < 300 {
		t.Errorf("encode() kept %d bytes of the last run, want its share", n)
	}
}
