package dockerrun

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"runtime"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/google/go-cmp/cmp"
)

// frame returns one frame of Docker's multiplexed stream.
func frame(stream byte, payload string) []byte {
	b := make([]byte, frameHeaderSize, frameHeaderSize+len(payload))
	b[0] = stream
	binary.BigEndian.PutUint32(b[4:], uint32(len(payload)))
	return append(b, payload...)
}

// frames concatenates frames.
func frames(ff ...[]byte) []byte { return bytes.Join(ff, nil) }

// header returns a bare frame header announcing size bytes.
func header(stream, pad1, pad2, pad3 byte, size uint32) []byte {
	b := []byte{stream, pad1, pad2, pad3, 0, 0, 0, 0}
	binary.BigEndian.PutUint32(b[4:], size)
	return b
}

// byteFrames splits s into frames of one byte each.
func byteFrames(stream byte, s string) []byte {
	var b []byte
	for i := range len(s) {
		b = append(b, frame(stream, s[i:i+1])...)
	}
	return b
}

// trapReader fails the test if anything reads from it: it stands for the
// part of a stream that the code under test must not consume.
type trapReader struct {
	t    testing.TB
	what string
}

func (r trapReader) Read([]byte) (int, error) {
	r.t.Errorf("read past %s", r.what)
	return 0, errors.New("trap reader read")
}

// demuxOutcome is everything a run of the demuxer shows.
type demuxOutcome struct {
	Done   bool
	Err    string // the error's class: "", "EOF", "bad frame", "output limit"
	Stdout string
	Stderr string
	System string
	Result string
	Total  int64
}

func errClass(err error) string {
	switch {
	case err == nil:
		return ""
	case errors.Is(err, errBadFrame):
		return "bad frame"
	case errors.Is(err, errOutputLimit):
		return "output limit"
	case err == io.EOF:
		return "EOF"
	}
	return "other: " + err.Error()
}

const answerJSON = `{"stdout":"hi\n","stderr":"","error":""}`

func TestDemux(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		in    []byte
		limit int64 // default 1 MiB
		// trap: the stream goes on after in, and the demuxer must not read
		// it (an early answer, a rejected header).
		trap bool
		want demuxOutcome
	}{
		{
			name: "one frame",
			in:   frame(streamStdout, answerJSON),
			trap: true,
			want: demuxOutcome{Done: true, Stdout: answerJSON, Result: answerJSON, Total: int64(len(answerJSON))},
		},
		{
			name: "answer in one-byte frames",
			in:   byteFrames(streamStdout, answerJSON),
			trap: true,
			want: demuxOutcome{Done: true, Stdout: answerJSON, Result: answerJSON, Total: int64(len(answerJSON))},
		},
		{
			name: "answer split across frames at odd places",
			in:   frames(frame(streamStdout, `{"std`), frame(streamStdout, `out":"a}","s`), frame(streamStdout, `tderr":"","error":""`), frame(streamStdout, `}`)),
			trap: true,
			want: demuxOutcome{Done: true, Stdout: `{"stdout":"a}","stderr":"","error":""}`, Result: `{"stdout":"a}","stderr":"","error":""}`, Total: 38},
		},
		{
			name: "empty frames are skipped",
			in:   frames(frame(streamStdout, ""), frame(streamStderr, ""), frame(streamStdout, "{}")),
			trap: true,
			want: demuxOutcome{Done: true, Stdout: "{}", Result: "{}", Total: 2},
		},
		{
			name: "stdin frames are counted and dropped",
			in:   frames(frame(streamStdin, "payload echoed"), frame(streamStdout, "{}")),
			trap: true,
			want: demuxOutcome{Done: true, Stdout: "{}", Result: "{}", Total: 16},
		},
		{
			name: "stderr before the answer is kept",
			in:   frames(frame(streamStderr, "warning\n"), frame(streamStdout, answerJSON)),
			trap: true,
			want: demuxOutcome{Done: true, Stdout: answerJSON, Stderr: "warning\n", Result: answerJSON, Total: int64(8 + len(answerJSON))},
		},
		{
			name: "daemon error frame then end",
			in:   frame(streamSystem, "container died"),
			want: demuxOutcome{Err: "EOF", System: "container died", Total: 14},
		},
		{
			name: "early answer: frames after the object are not read",
			in:   frame(streamStdout, `{"a":1}`+"\n"+`{"b"`),
			trap: true, // stands for the frames that follow
			want: demuxOutcome{Done: true, Stdout: `{"a":1}` + "\n" + `{"b"`, Result: `{"a":1}`, Total: 12},
		},
		{
			name: "leading whitespace before the object",
			in:   frames(frame(streamStdout, " \n\t\r\n"), frame(streamStdout, ` {"a":[1,2]}`)),
			trap: true,
			want: demuxOutcome{Done: true, Stdout: " \n\t\r\n" + ` {"a":[1,2]}`, Result: `{"a":[1,2]}`, Total: 17},
		},
		{
			name: "braces, brackets and escaped quotes inside strings",
			in:   frame(streamStdout, `{"stdout":"}{][\"}\\","stderr":"\\\"{","error":"\\"}`),
			trap: true,
			want: demuxOutcome{
				Done:   true,
				Stdout: `{"stdout":"}{][\"}\\","stderr":"\\\"{","error":"\\"}`,
				Result: `{"stdout":"}{][\"}\\","stderr":"\\\"{","error":"\\"}`,
				Total:  52,
			},
		},
		{
			name: "nested objects and arrays",
			in:   byteFrames(streamStdout, `{"a":{"b":[{"c":[]},{}]},"d":[[],[[{}]]]}`),
			trap: true,
			want: demuxOutcome{Done: true, Stdout: `{"a":{"b":[{"c":[]},{}]},"d":[[],[[{}]]]}`, Result: `{"a":{"b":[{"c":[]},{}]},"d":[[],[[{}]]]}`, Total: 41},
		},
		{
			name: "not an object: read to the end, no answer",
			in:   frames(frame(streamStdout, "[1,2]"), frame(streamStdout, "{}")),
			want: demuxOutcome{Err: "EOF", Stdout: "[1,2]{}", Total: 7},
		},
		{
			name: "plain text",
			in:   frame(streamStdout, "this is not json\n"),
			want: demuxOutcome{Err: "EOF", Stdout: "this is not json\n", Total: 17},
		},
		{
			name: "incomplete object then end",
			in:   frame(streamStdout, `{"stdout":"`),
			want: demuxOutcome{Err: "EOF", Stdout: `{"stdout":"`, Total: 11},
		},
		{
			name: "empty stream",
			in:   nil,
			want: demuxOutcome{Err: "EOF"},
		},
		{
			name: "stream ends inside a header",
			in:   append(frame(streamStderr, "x"), 1, 0, 0),
			want: demuxOutcome{Err: "bad frame", Stderr: "x", Total: 1},
		},
		{
			name: "stream ends inside a frame",
			in:   frame(streamStdout, `{"stdout"`)[:frameHeaderSize+4],
			want: demuxOutcome{Err: "bad frame", Stdout: `{"st`, Total: 9},
		},
		{
			name: "stream ends inside a stdin frame",
			in:   frame(streamStdin, `abcdef`)[:frameHeaderSize+2],
			want: demuxOutcome{Err: "bad frame", Total: 6},
		},
		{
			name: "stream type 4",
			in:   header(4, 0, 0, 0, 3),
			trap: true,
			want: demuxOutcome{Err: "bad frame"},
		},
		{
			name: "stream type 255 announcing 4 GiB",
			in:   header(255, 0, 0, 0, 1<<32-1),
			trap: true,
			want: demuxOutcome{Err: "bad frame"},
		},
		{
			name: "padding byte 1 set",
			in:   header(streamStdout, 1, 0, 0, 2),
			trap: true,
			want: demuxOutcome{Err: "bad frame"},
		},
		{
			name: "padding byte 2 set",
			in:   header(streamStdout, 0, 0x80, 0, 2),
			trap: true,
			want: demuxOutcome{Err: "bad frame"},
		},
		{
			name: "padding byte 3 set",
			in:   header(streamStdout, 0, 0, 1, 2),
			trap: true,
			want: demuxOutcome{Err: "bad frame"},
		},
		{
			name: "bad header after good frames",
			in:   frames(frame(streamStdout, `{"a":`), header(streamStderr, 0, 1, 0, 1)),
			trap: true,
			want: demuxOutcome{Err: "bad frame", Stdout: `{"a":`, Total: 5},
		},
		{
			name:  "answer exactly at the limit",
			in:    frame(streamStdout, answerJSON),
			limit: int64(len(answerJSON)),
			trap:  true,
			want:  demuxOutcome{Done: true, Stdout: answerJSON, Result: answerJSON, Total: int64(len(answerJSON))},
		},
		{
			name:  "frame one byte over the limit: what fits is kept",
			in:    frame(streamStdout, answerJSON),
			limit: int64(len(answerJSON)) - 1,
			want:  demuxOutcome{Err: "output limit", Stdout: answerJSON[:len(answerJSON)-1], Total: int64(len(answerJSON)) - 1},
		},
		{
			name:  "stdout and stderr share the limit",
			in:    frames(frame(streamStderr, "0123456789"), frame(streamStdout, "0123456789")),
			limit: 15,
			want:  demuxOutcome{Err: "output limit", Stderr: "0123456789", Stdout: "01234", Total: 15},
		},
		{
			name:  "stdin frames count against the limit",
			in:    frames(frame(streamStdin, "0123456789"), frame(streamStdout, "{}")),
			limit: 11,
			want:  demuxOutcome{Err: "output limit", Stdout: "{", Total: 11},
		},
		{
			name:  "daemon error frames count against the limit",
			in:    frame(streamSystem, "0123456789"),
			limit: 4,
			want:  demuxOutcome{Err: "output limit", System: "0123", Total: 4},
		},
		{
			name:  "budget already spent",
			in:    frames(frame(streamStdout, "0123"), header(streamStdout, 0, 0, 0, 1)),
			limit: 4,
			trap:  true,
			want:  demuxOutcome{Err: "output limit", Stdout: "0123", Total: 4},
		},
	}
	readers := []struct {
		name string
		wrap func(io.Reader) io.Reader
	}{
		{"whole", func(r io.Reader) io.Reader { return r }},
		{"one byte at a time", iotest.OneByteReader},
		{"half reads", iotest.HalfReader},
	}
	for _, tt := range tests {
		for _, rd := range readers {
			t.Run(tt.name+"/"+rd.name, func(t *testing.T) {
				t.Parallel()
				var in io.Reader = bytes.NewReader(tt.in)
				if tt.trap {
					in = io.MultiReader(in, trapReader{t, "the end of the stream the demuxer may read"})
				}
				limit := tt.limit
				if limit == 0 {
					limit = 1 << 20
				}
				d := newDemux(rd.wrap(in), limit)
				done, err := d.run()
				got := demuxOutcome{
					Done:   done,
					Err:    errClass(err),
					Stdout: string(d.stdout),
					Stderr: string(d.stderr),
					System: string(d.system),
					Result: string(d.result()),
					Total:  d.total,
				}
				if diff := cmp.Diff(tt.want, got); diff != "" {
					t.Errorf("demux.run() mismatch (-want +got):\n%s", diff)
				}
				for name, buf := range map[string][]byte{"stdout": d.stdout, "stderr": d.stderr, "system": d.system} {
					if int64(cap(buf)) > limit {
						t.Errorf("cap(%s) = %d, want at most the limit %d", name, cap(buf), limit)
					}
				}
			})
		}
	}
}

// The early answer case must be checked with what follows it unread: the
// trap makes "frames after the object are not read" a real check.
func TestDemuxEarlyAnswerLeavesTheRestUnread(t *testing.T) {
	t.Parallel()
	rest := frames(frame(streamStderr, "late"), frame(streamStdout, "more"))
	in := bytes.NewReader(frames(frame(streamStdout, answerJSON), rest))
	d := newDemux(in, 1<<20)
	done, err := d.run()
	if !done || err != nil {
		t.Fatalf("demux.run() = %v, %v; want true, nil", done, err)
	}
	if diff := cmp.Diff(len(rest), in.Len()); diff != "" {
		t.Errorf("bytes left unread mismatch (-want +got):\n%s", diff)
	}
}

// bytesAllocated returns the average number of bytes allocated by f, which
// must run alone: the count is process-wide.
func bytesAllocated(runs int, f func()) uint64 {
	var before, after runtime.MemStats
	f() // warm up
	runtime.GC()
	runtime.ReadMemStats(&before)
	for range runs {
		f()
	}
	runtime.ReadMemStats(&after)
	return (after.TotalAlloc - before.TotalAlloc) / uint64(runs)
}

// Not parallel: it measures the process's allocations.
func TestDemuxHeaderCheckedBeforeAllocating(t *testing.T) {
	tests := []struct {
		name string
		hdr  []byte
	}{
		{"stream type 4", header(4, 0, 0, 0, 1<<32-1)},
		{"stream type 255", header(255, 0, 0, 0, 1<<32-1)},
		{"padding byte 1 set", header(streamStdout, 1, 0, 0, 1<<32-1)},
		{"padding byte 3 set", header(streamStderr, 0, 0, 0xff, 1<<32-1)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var err error
			// A budget far over 4 GiB: only the header check stands between
			// the announced size and an allocation.
			n := bytesAllocated(20, func() {
				d := newDemux(io.MultiReader(bytes.NewReader(tt.hdr), trapReader{t, "a rejected header"}), 1<<40)
				_, err = d.run()
			})
			if !errors.Is(err, errBadFrame) {
				t.Errorf("demux.run() error = %v, want %v", err, errBadFrame)
			}
			if n > 4<<10 {
				t.Errorf("demux.run() allocated %d bytes per run for a header announcing 4 GiB, want at most 4 KiB", n)
			}
		})
	}
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// endless yields the same byte forever.
type endless byte

func (e endless) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(e)
	}
	return len(p), nil
}

// Not parallel: it measures the process's allocations.
func TestDemuxHugeFrameBoundedByLimit(t *testing.T) {
	const limit = 64 << 10
	for _, stream := range []byte{streamStdout, streamStderr, streamSystem, streamStdin} {
		var d *demux
		var err error
		var read int64
		n := bytesAllocated(10, func() {
			cr := &countingReader{r: io.MultiReader(bytes.NewReader(header(stream, 0, 0, 0, 1<<32-1)), endless('a'))}
			d = newDemux(cr, limit)
			_, err = d.run()
			read = cr.n
		})
		if !errors.Is(err, errOutputLimit) {
			t.Errorf("stream %d: demux.run() error = %v, want %v", stream, err, errOutputLimit)
		}
		if want := int64(frameHeaderSize + limit); read != want {
			t.Errorf("stream %d: read %d bytes, want %d (the header and the limit)", stream, read, want)
		}
		for name, buf := range map[string][]byte{"stdout": d.stdout, "stderr": d.stderr, "system": d.system} {
			if cap(buf) > limit {
				t.Errorf("stream %d: cap(%s) = %d, want at most %d", stream, name, cap(buf), limit)
			}
		}
		// io.CopyN for stdin frames allocates a copy buffer of its own.
		if n > 2*limit {
			t.Errorf("stream %d: demux.run() allocated %d bytes per run, want at most %d", stream, n, 2*limit)
		}
	}
}

// Many small frames must not make the buffers grow past the limit, nor
// their total past it.
func TestDemuxManyFramesBoundedByLimit(t *testing.T) {
	t.Parallel()
	const limit = 1000
	var in []byte
	for i := range 300 {
		stream := byte(streamStdout)
		if i%3 == 0 {
			stream = streamStderr
		}
		in = append(in, frame(stream, "[1234]")...)
	}
	d := newDemux(bytes.NewReader(in), limit)
	done, err := d.run()
	if done || !errors.Is(err, errOutputLimit) {
		t.Fatalf("demux.run() = %v, %v; want false, %v", done, err, errOutputLimit)
	}
	if got := len(d.stdout) + len(d.stderr); got != limit {
		t.Errorf("len(stdout)+len(stderr) = %d, want %d", got, limit)
	}
	if cap(d.stdout) > limit || cap(d.stderr) > limit {
		t.Errorf("cap(stdout), cap(stderr) = %d, %d; want at most %d each", cap(d.stdout), cap(d.stderr), limit)
	}
}

func TestDemuxReaderError(t *testing.T) {
	t.Parallel()
	boom := errors.New("connection reset")
	tests := []struct {
		name string
		in   io.Reader
	}{
		{"in a header", io.MultiReader(bytes.NewReader([]byte{1, 0}), iotest.ErrReader(boom))},
		{"in a payload", io.MultiReader(bytes.NewReader(frame(streamStdout, "{}")[:9]), iotest.ErrReader(boom))},
		{"in a stdin payload", io.MultiReader(bytes.NewReader(frame(streamStdin, "xx")[:9]), iotest.ErrReader(boom))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			done, err := newDemux(tt.in, 1<<20).run()
			if done || !errors.Is(err, boom) {
				t.Errorf("demux.run() = %v, %v; want false and the reader's error", done, err)
			}
		})
	}
}

func TestObjectScanner(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   string
		want int // end of the first object, 0 if none
	}{
		{"empty", "", 0},
		{"only whitespace", " \t\r\n ", 0},
		{"empty object", "{}", 2},
		{"leading whitespace", " \n\t\r{}", 6},
		{"trailing data", `{"a":1} {"b":2}`, 7},
		{"trailing newline", "{}\n", 2},
		{"incomplete", `{"a":{"b":1}`, 0},
		{"brace in a string", `{"a":"}"}`, 9},
		{"brackets in a string", `{"a":"]]]"}`, 11},
		{"escaped quote", `{"a":"\"}"}`, 11},
		{"escaped backslash before the closing quote", `{"a":"\\"}`, 10},
		{"escaped backslash then quote", `{"a":"\\\"}"}`, 13},
		{"unterminated string", `{"a":"}`, 0},
		{"unicode escapes and text", `{"a":"\u007d日本\"语}"}`, 26},
		{"nested", `{"a":{"b":[{"c":[]},{}]},"d":[[],[[{}]]]}`, 41},
		{"deep", strings.Repeat(`{"a":[`, 100) + strings.Repeat(`]}`, 100), 800},
		{"array", `[1,2]`, 0},
		{"array then object", `[1]{}`, 0},
		{"string", `"{}"`, 0},
		{"text", "this is not json {}", 0},
		{"whitespace then text", "  x{}", 0},
		{"null", "null", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var whole objectScanner
			if diff := cmp.Diff(tt.want, whole.feed([]byte(tt.in))); diff != "" {
				t.Errorf("feed(whole) mismatch (-want +got):\n%s", diff)
			}
			// Fed as a buffer that grows one byte at a time, the scanner must
			// find the same end at the byte that completes the object.
			var s objectScanner
			got := 0
			for i := 1; i <= len(tt.in) && got == 0; i++ {
				got = s.feed([]byte(tt.in[:i]))
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("feed(byte by byte) mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDecodeResult(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		raw     string
		want    *Result
		wantErr string // in the error; "" for none
	}{
		{
			name: "minimal",
			raw:  `{"stdout":"out","stderr":"err","error":""}`,
			want: &Result{Stdout: "out", Stderr: "err", Raw: json.RawMessage(`{"stdout":"out","stderr":"err","error":""}`)},
		},
		{
			name: "user error",
			raw:  `{"stdout":"","stderr":"","error":"exit status 1"}`,
			want: &Result{Error: "exit status 1", Raw: json.RawMessage(`{"stdout":"","stderr":"","error":"exit status 1"}`)},
		},
		{
			name: "extra fields kept verbatim in Raw",
			raw:  `{ "duration" : 1234,"stdout":"a\u00e9","extra":[1, 2.50, {"x":null}] ,"stderr":"","error":""}`,
			want: &Result{Stdout: "aé", Raw: json.RawMessage(`{ "duration" : 1234,"stdout":"a\u00e9","extra":[1, 2.50, {"x":null}] ,"stderr":"","error":""}`)},
		},
		{
			name:    "missing stdout",
			raw:     `{"stderr":"","error":""}`,
			wantErr: "answer has no stdout field",
		},
		{
			name:    "missing all",
			raw:     `{"duration":1}`,
			wantErr: "answer has no stdout, stderr, error field",
		},
		{
			name:    "null counts as missing",
			raw:     `{"stdout":"","stderr":"","error":null}`,
			wantErr: "answer has no error field",
		},
		{
			name:    "number for stdout",
			raw:     `{"stdout":1,"stderr":"","error":""}`,
			wantErr: "decode answer: json: cannot unmarshal number",
		},
		{
			name:    "object for error",
			raw:     `{"stdout":"","stderr":"","error":{"message":"x"}}`,
			wantErr: "decode answer: json: cannot unmarshal object",
		},
		{
			name:    "array",
			raw:     `[]`,
			wantErr: "decode answer: json: cannot unmarshal array",
		},
		{
			name:    "invalid JSON",
			raw:     `{"stdout":"a",}`,
			wantErr: "decode answer: invalid character '}'",
		},
		{
			name:    "empty",
			raw:     ``,
			wantErr: "decode answer: unexpected end of JSON input",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			raw := []byte(tt.raw)
			got, err := decodeResult(raw)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("decodeResult() error: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("decodeResult() error = %v, want one containing %q", err, tt.wantErr)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("decodeResult() mismatch (-want +got):\n%s", diff)
			}
			if got != nil && len(raw) > 0 {
				// Raw must not alias the demuxer's buffer, which is reused.
				raw[0] = 'X'
				if got.Raw[0] != '{' {
					t.Errorf("Result.Raw shares memory with the input")
				}
			}
		})
	}
}

func TestExcerpt(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   string
		n    int
		want string
	}{
		{"short", "abc", 10, "abc"},
		{"exact", "abc", 3, "abc"},
		{"empty", "", 3, ""},
		{"cut ASCII", "abcdef", 3, "abc [cut]"},
		{"cut at a rune boundary", "日本語", 6, "日本 [cut]"},
		{"cut after 1 byte of a 3-byte rune", "日本語", 4, "日 [cut]"},
		{"cut after 2 bytes of a 3-byte rune", "日本語", 5, "日 [cut]"},
		{"cut inside the first rune", "日本語", 2, " [cut]"},
		{"cut after 3 bytes of a 4-byte rune", "a😀b", 4, "a [cut]"},
		{"cut after a 4-byte rune", "a😀b", 5, "a😀 [cut]"},
		{"cut after 1 byte of a 2-byte rune", "aéb", 2, "a [cut]"},
		{"multibyte not cut", "héllo wörld", 100, "héllo wörld"},
		{"invalid byte replaced", "a\xffb", 10, "a\uFFFDb"},
		{"invalid bytes replaced once", "a\xff\xfeb", 10, "a\uFFFDb"},
		{"truncated rune in the input replaced", "ab\xe6\x97", 10, "ab\uFFFD"},
		{"invalid byte at the cut replaced", "ab\xffcd", 3, "ab\uFFFD [cut]"},
		{"invalid sequence at the cut replaced", "ab\xe6xyz", 3, "ab\uFFFD [cut]"},
		{"lone continuation byte at the cut replaced", "ab\x80cd", 3, "ab\uFFFD [cut]"},
		{"replacement character in the input kept", "a\uFFFDb", 4, "a\uFFFD [cut]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if diff := cmp.Diff(tt.want, excerpt([]byte(tt.in), tt.n)); diff != "" {
				t.Errorf("excerpt(%q, %d) mismatch (-want +got):\n%s", tt.in, tt.n, diff)
			}
		})
	}
}

// benchAnswer returns a 64 KiB answer object sent in 4 KiB stdout frames.
func benchAnswer(b *testing.B) (answer, stream []byte) {
	b.Helper()
	const size, frameSize = 64 << 10, 4 << 10
	prefix, suffix := `{"stdout":"`, `","stderr":"","error":""}`
	body := strings.Repeat(`ab\"}{][`, (size-len(prefix)-len(suffix))/8)
	answer = []byte(prefix + body + strings.Repeat("x", size-len(prefix)-len(suffix)-len(body)) + suffix)
	if len(answer) != size || !json.Valid(answer) {
		b.Fatalf("bad benchmark answer: %d bytes, valid %v", len(answer), json.Valid(answer))
	}
	for rest := answer; len(rest) > 0; {
		n := min(frameSize, len(rest))
		stream = append(stream, frame(streamStdout, string(rest[:n]))...)
		rest = rest[n:]
	}
	return answer, stream
}

func BenchmarkDemux(b *testing.B) {
	answer, stream := benchAnswer(b)
	r := bytes.NewReader(stream)
	b.SetBytes(int64(len(answer)))
	b.ReportAllocs()
	for b.Loop() {
		r.Reset(stream)
		d := newDemux(r, 1<<20)
		if done, err := d.run(); !done || err != nil {
			b.Fatalf("demux.run() = %v, %v", done, err)
		}
		if len(d.result()) != len(answer) {
			b.Fatalf("result is %d bytes, want %d", len(d.result()), len(answer))
		}
	}
}

func BenchmarkObjectScanner(b *testing.B) {
	answer, _ := benchAnswer(b)
	b.SetBytes(int64(len(answer)))
	b.ReportAllocs()
	for b.Loop() {
		var s objectScanner
		// Fed as the demuxer feeds it: the buffer grows by 4 KiB frames.
		end := 0
		for n := 4 << 10; end == 0 && n <= len(answer); n += 4 << 10 {
			end = s.feed(answer[:n])
		}
		if end != len(answer) {
			b.Fatalf("feed() = %d, want %d", end, len(answer))
		}
	}
}
