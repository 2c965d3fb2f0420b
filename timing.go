package dockerrun

import "time"

// Timing is when a run passed each of its steps, for finding where the time
// of a run goes (docs/performance.md does). The clock is the host's, which
// containers share: with an agent that reports its own steps (code-runner's
// "trace" field) the two line up.
type Timing struct {
	// Start is when [Runner.Run] was called.
	Start time.Time
	// Taken is when the run had its container: taken from the warm pool,
	// or created, attached and started after waiting for a place.
	Taken time.Time
	// Written is when the payload was written and the container's stdin
	// closed; zero if the answer was complete before that (an agent may
	// answer without reading all of its stdin).
	Written time.Time
	// Answered is when the container's answer, one JSON object, had been
	// read. Run returns after decoding it.
	Answered time.Time
}
