package jsonscan

import "testing"

func TestMaxDepth(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want int
	}{
		{in: ``, want: 0},
		{in: `1`, want: 0},
		{in: `{}`, want: 1},
		{in: `{"a":[1,{"b":[]}]}`, want: 4},
		{in: `{"s":"[[[{{{"}`, want: 1},
		{in: `{"s":"\"[[[\\"}`, want: 1},
		{in: `["\\", [["\\\""]]]`, want: 3},
		{in: `[[[`, want: 3},
	}
	for _, tt := range tests {
		if got := MaxDepth([]byte(tt.in)); got != tt.want {
			t.Errorf("MaxDepth(%s) = %d, want %d", tt.in, got, tt.want)
		}
	}
}
