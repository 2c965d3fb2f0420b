package main

import (
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/dockerrun/dockerrun/internal/protocol"
)

// Result is the one JSON object the agent writes to stdout: the protocol's
// answer, with the agent's encoder. The agent always reports usage.
type Result protocol.Answer

// RunResult is the outcome of one test case of a request with runs.
type RunResult = protocol.RunAnswer

// encode returns the result as one line of JSON. When maxSize > 0 the line,
// newline included, is kept strictly under maxSize bytes: if it would not
// fit, the string fields are cut (on UTF-8 boundaries, sharing the room
// fairly: a short field keeps all of it), and the error of each answer (the
// top level or a run) whose output was cut says that it was truncated.
func (r Result) encode(maxSize int64) []byte {
	r = r.validUTF8()
	b := r.appendJSON(nil)
	if maxSize <= 0 || int64(len(b)) < maxSize {
		return b
	}
	// Each entry is {error, stdout, stderr} of the top level or of a run.
	entries := r.entries()
	texts := make([]string, 0, 3*len(entries))
	for _, e := range entries {
		for _, f := range e {
			texts = append(texts, *f)
			*f = ""
		}
	}
	room := maxSize - 1 - int64(len(r.appendJSON(nil)))
	sizes := make([]int64, len(texts))
	for i, t := range texts {
		sizes[i] = jsonLen(t)
	}
	for {
		share := shareRoom(room, sizes)
		noted := false
		for i := range entries {
			k := 3 * i
			cut := share[k] < sizes[k] || share[k+1] < sizes[k+1] || share[k+2] < sizes[k+2]
			if first, _, _ := strings.Cut(texts[k], "\n"); cut && !strings.Contains(first, outputLimitPrefix) {
				msg := fmt.Sprintf("%s the output does not fit in %d bytes and was truncated", outputLimitPrefix, maxSize)
				if texts[k] != "" {
					msg += "; " + texts[k]
				}
				texts[k], sizes[k], noted = msg, jsonLen(msg), true
			}
		}
		if noted {
			continue // the notes take room: share again
		}
		for i, e := range entries {
			for j, f := range e {
				*f = jsonPrefix(texts[3*i+j], share[3*i+j])
			}
		}
		return r.appendJSON(nil)
	}
}

// validUTF8 returns a copy of r whose strings are valid UTF-8.
func (r Result) validUTF8() Result {
	valid := func(s string) string { return strings.ToValidUTF8(s, "\uFFFD") }
	r.Stdout, r.Stderr, r.Error = valid(r.Stdout), valid(r.Stderr), valid(r.Error)
	if r.Runs != nil {
		runs := make([]RunResult, len(r.Runs))
		for i, run := range r.Runs {
			run.Stdout, run.Stderr, run.Error = valid(run.Stdout), valid(run.Stderr), valid(run.Error)
			runs[i] = run
		}
		r.Runs = runs
	}
	return r
}

// entries returns the error, stdout and stderr fields of the top level and
// of each run.
func (r *Result) entries() [][3]*string {
	out := [][3]*string{{&r.Error, &r.Stdout, &r.Stderr}}
	for i := range r.Runs {
		run := &r.Runs[i]
		out = append(out, [3]*string{&run.Error, &run.Stdout, &run.Stderr})
	}
	return out
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

// appendJSON appends the result as a JSON object and a newline, with the
// keys of [protocol.Answer]. Usage is always written; runs only when the
// request had runs.
func (r Result) appendJSON(b []byte) []byte {
	var usage protocol.Usage
	if r.Usage != nil {
		usage = *r.Usage
	}
	b = appendOutcome(b, r.Stdout, r.Stderr, r.Error, r.Duration, usage)
	if r.Runs != nil {
		b = append(b, `,"runs":[`...)
		for i, run := range r.Runs {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendOutcome(b, run.Stdout, run.Stderr, run.Error, run.Duration, run.Usage)
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	if r.Trace != nil {
		b = append(b, `,"trace":`...)
		b = appendTrace(b, r.Trace)
	}
	return append(b, "}\n"...)
}

// appendOutcome appends an object's opening brace and the fields that the
// top level and each run have in common, without the closing brace.
func appendOutcome(b []byte, stdout, stderr, errText string, d time.Duration, u protocol.Usage) []byte {
	b = append(b, `{"stdout":`...)
	b = appendJSONString(b, stdout)
	b = append(b, `,"stderr":`...)
	b = appendJSONString(b, stderr)
	b = append(b, `,"error":`...)
	b = appendJSONString(b, errText)
	b = append(b, `,"duration":`...)
	b = strconv.AppendInt(b, int64(d), 10)
	b = append(b, `,"usage":{"cpu_time":`...)
	b = strconv.AppendInt(b, int64(u.CPUTime), 10)
	b = append(b, `,"memory":`...)
	b = strconv.AppendInt(b, u.Memory, 10)
	return append(b, '}')
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
