package httpapi

import (
	"testing"
	"time"

	"github.com/dockerrun/dockerrun"
)

func TestServerTiming(t *testing.T) {
	t0 := time.Date(2026, 12, 2, 13, 0, 0, 0, time.UTC)
	at := func(us int) time.Time { return t0.Add(time.Duration(us) * time.Microsecond) }
	tests := []struct {
		name   string
		timing dockerrun.Timing
		end    time.Time
		warm   bool
		want   string
	}{
		{
			"every step",
			dockerrun.Timing{Start: at(100), Taken: at(150), Written: at(400), Answered: at(25400)},
			at(25500),
			false,
			"read;dur=0.100, wait;dur=0.050;desc=\"cold\", write;dur=0.250, container;dur=25.000, decode;dur=0.100",
		},
		{
			"answered before the write was done",
			dockerrun.Timing{Start: at(100), Taken: at(150), Answered: at(2150)},
			at(2160),
			true,
			"read;dur=0.100, wait;dur=0.050;desc=\"warm\", write;dur=0.000, container;dur=2.000, decode;dur=0.010",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := serverTiming(t0, tt.timing, tt.end, tt.warm); got != tt.want {
				t.Errorf("serverTiming() = %q, want %q", got, tt.want)
			}
		})
	}
}
