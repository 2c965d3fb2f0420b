package dockerrun

import (
	"context"
	"slices"
	"testing"
	"time"
)

// TestRunTiming checks that a run's Timing has every step, in order, within
// the time Run took. Written may be zero: the fake agent answers without
// waiting for its stdin.
func TestRunTiming(t *testing.T) {
	t.Parallel()
	f := newFakeDocker()
	r := newTestRunner(t, f)
	before := time.Now()
	res, err := r.Run(context.Background(), "fake/img", map[string]any{"mode": "echo"})
	after := time.Now()
	if err != nil {
		t.Fatalf("Run() error: %v", err)
	}
	tm := res.Timing
	steps := []struct {
		name string
		at   time.Time
	}{{"before Run", before}, {"Start", tm.Start}, {"Taken", tm.Taken}, {"Written", tm.Written}, {"Answered", tm.Answered}, {"after Run", after}}
	if tm.Written.IsZero() {
		steps = slices.Delete(steps, 3, 4)
	}
	for i := 1; i < len(steps); i++ {
		if steps[i].at.Before(steps[i-1].at) {
			t.Errorf("Timing %+v: %s (%v) is before %s (%v)", tm, steps[i].name, steps[i].at, steps[i-1].name, steps[i-1].at)
		}
	}
	if got, want := res.Duration, tm.Answered.Sub(tm.Taken); got > want {
		t.Errorf("Duration = %v, more than Answered - Taken = %v", got, want)
	}
}
