package main

import (
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Result is the one JSON object the agent writes to stdout.
type Result struct {
	// Stdout and Stderr are what the user's run command wrote, as valid UTF-8
	// (invalid sequences become U+FFFD).
	Stdout string `json:"stdout"`
	Stderr string `json:"stderr"`
	// Error is empty on success; otherwise it says what went wrong: a bad
	// request, "Exit code: N", "Killed by signal: ...", a limit, or a failed
	// build with its output.
	Error string `json:"error"`
	// Duration is the time spent building and running, in nanoseconds.
	Duration time.Duration `json:"duration"`
	// Trace, when the request asked for it, is when the agent passed each
	// step of the run.
	Trace *trace `json:"trace,omitempty"`
}

// encode returns the result as one line of JSON. When maxSize > 0 the line,
// newline included, is kept strictly under maxSize bytes: if it would not
// fit, stdout, stderr and error are cut (on UTF-8 boundaries, sharing the room
// fairly) and the error says that the output was truncated.
func (r Result) encode(maxSize int64) []byte {
	r.Stdout = strings.ToValidUTF8(r.Stdout, "\uFFFD")
	r.Stderr = strings.ToValidUTF8(r.Stderr, "\uFFFD")
	r.Error = strings.ToValidUTF8(r.Error, "\uFFFD")
	b := r.appendJSON(nil)
	if maxSize <= 0 || int64(len(b)) < maxSize {
		return b
	}
	if firstLine, _, _ := strings.Cut(r.Error, "\n"); !strings.Contains(firstLine, outputLimitPrefix) {
		msg := fmt.Sprintf("%s the output does not fit in %d bytes and was truncated", outputLimitPrefix, maxSize)
		if r.Error != "" {
			msg += "; " + r.Error
		}
		r.Error = msg
	}
	overhead := int64(len(Result{Duration: r.Duration, Trace: r.Trace}.appendJSON(nil)))
	room := maxSize - 1 - overhead
	fields := []*string{&r.Error, &r.Stdout, &r.Stderr}
	share := shareRoom(room, []int64{jsonLen(r.Error), jsonLen(r.Stdout), jsonLen(r.Stderr)})
	for i, f := range fields {
		*f = jsonPrefix(*f, share[i])
	}
	return r.appendJSON(nil)
}

// shareRoom divides room bytes among fields of the given sizes: fields that
// fit in an equal share keep all they need, and what they leave is shared by
// the others. It returns each field's allowance.
func shareRoom(room int64, sizes []int64) []int64 {
	out := make([]int64, len(sizes))
	open := make([]int, 0, len(sizes))
	for i, s := range sizes {
		if s > 0 {
			open = append(open, i)
		}
	}
	room = max(room, 0)
	for len(open) > 0 {
		share := room / int64(len(open))
		rest := open[:0]
		for _, i := range open {
			if sizes[i] <= share {
				out[i] = sizes[i]
				room -= sizes[i]
			} else {
				rest = append(rest, i)
			}
		}
		if len(rest) == len(open) {
			for _, i := range rest {
				out[i] = share
			}
			break
		}
		open = rest
	}
	return out
}

// appendJSON appends the result as a JSON object and a newline.
func (r Result) appendJSON(b []byte) []byte {
	b = append(b, `{"stdout":`...)
	b = appendJSONString(b, r.Stdout)
	b = append(b, `,"stderr":`...)
	b = appendJSONString(b, r.Stderr)
	b = append(b, `,"error":`...)
	b = appendJSONString(b, r.Error)
	b = append(b, `,"duration":`...)
	b = strconv.AppendInt(b, int64(r.Duration), 10)
	if r.Trace != nil {
		b = append(b, `,"trace":`...)
		b = r.Trace.appendJSON(b)
	}
	return append(b, "}\n"...)
}

// appendJSONString appends s as a JSON string. Invalid UTF-8 is written as
// U+FFFD. Its output length is exactly jsonLen(s).
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		b = appendJSONRune(b, r, s[i:i+size])
		i += size
	}
	return append(b, '"')
}

const hexDigits = "0123456789abcdef"

// appendJSONRune appends one decoded rune; raw is its bytes in the input.
func appendJSONRune(b []byte, r rune, raw string) []byte {
	switch {
	case r == '"':
		return append(b, `\"`...)
	case r == '\\':
		return append(b, `\\`...)
	case r == '\n':
		return append(b, `\n`...)
	case r == '\r':
		return append(b, `\r`...)
	case r == '\t':
		return append(b, `\t`...)
	case r < 0x20:
		return append(b, '\\', 'u', '0', '0', hexDigits[r>>4], hexDigits[r&0xf])
	case r == utf8.RuneError && len(raw) == 1:
		return append(b, "\uFFFD"...)
	}
	return append(b, raw...)
}

// jsonRuneLen is the length appendJSONRune writes for a rune of size bytes.
func jsonRuneLen(r rune, size int) int64 {
	switch {
	case r == '"', r == '\\', r == '\n', r == '\r', r == '\t':
		return 2
	case r < 0x20:
		return 6
	case r == utf8.RuneError && size == 1:
		return 3
	}
	return int64(size)
}

// jsonLen is the length of s encoded by appendJSONString, without the quotes.
func jsonLen(s string) int64 {
	var n int64
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		n += jsonRuneLen(r, size)
		i += size
	}
	return n
}

// jsonPrefix returns the longest prefix of s, cut on a rune boundary, whose
// encoded length (without quotes) is at most room.
func jsonPrefix(s string, room int64) string {
	var n int64
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		n += jsonRuneLen(r, size)
		if n > room {
			return s[:i]
		}
		i += size
	}
	return s
}
