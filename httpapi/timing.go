package httpapi

import (
	"strconv"
	"time"

	"github.com/dockerrun/dockerrun"
)

// serverTiming returns the Server-Timing header of a run's answer: how long
// each step took in milliseconds, from the moment the handler started to
// the moment it had the result.
//
//	read       read and check the request body
//	wait       take a warm container, or wait for a place and create, attach and start one;
//	           its desc says which: "warm" or "cold"
//	write      write the payload and close the container's stdin
//	container  from then until the container's answer was read
//	decode     decode the answer
//
// The time the HTTP layer takes, both ways, is what a client measures minus
// their sum.
func serverTiming(start time.Time, t dockerrun.Timing, end time.Time, warm bool) string {
	written := t.Written
	if written.IsZero() {
		written = t.Taken // the answer came first: count the write in the container's time
	}
	var b []byte
	for _, s := range []struct {
		name     string
		from, to time.Time
	}{
		{"read", start, t.Start},
		{"wait", t.Start, t.Taken},
		{"write", t.Taken, written},
		{"container", written, t.Answered},
		{"decode", t.Answered, end},
	} {
		if len(b) > 0 {
			b = append(b, ", "...)
		}
		b = append(b, s.name...)
		b = append(b, ";dur="...)
		b = strconv.AppendFloat(b, float64(s.to.Sub(s.from))/float64(time.Millisecond), 'f', 3, 64)
		if s.name == "wait" {
			kind := "cold"
			if warm {
				kind = "warm"
			}
			b = append(b, `;desc="`+kind+`"`...)
		}
	}
	return string(b)
}
