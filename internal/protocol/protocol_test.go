package protocol

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestWithLimits(t *testing.T) {
	t.Parallel()
	lim := Limits{ExecutionTime: Seconds(1500 * time.Millisecond), OutputSize: 100}
	tests := []struct {
		name    string
		payload string
		lim     Limits
		want    string
		wantErr bool
	}{
		{name: "no limits: unchanged", payload: `{"a": 1} `, want: `{"a": 1} `},
		{name: "empty object", payload: "{ }", lim: lim, want: `{ "limits":{"execution_time":1.5,"output_size":100}}`},
		{name: "appended last", payload: `{"language":"c"}` + "\n", lim: lim,
			want: `{"language":"c","limits":{"execution_time":1.5,"output_size":100}}`},
		{name: "memory only", payload: `{}`, lim: Limits{Memory: 1 << 20}, want: `{"limits":{"memory":1048576}}`},
		{name: "not an object", payload: `[]`, lim: lim, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := WithLimits([]byte(tt.payload), tt.lim)
			if (err != nil) != tt.wantErr {
				t.Fatalf("WithLimits() error = %v, want error %v", err, tt.wantErr)
			}
			if err == nil && string(got) != tt.want {
				t.Errorf("WithLimits() = %s, want %s", got, tt.want)
			}
		})
	}
}

// TestWithLimitsWins checks that the runner's limits win over limits the
// payload already has, field by field, as the agent decodes them; a field
// that the runner does not set keeps the payload's (the agent only lowers
// its limits with it).
func TestWithLimitsWins(t *testing.T) {
	t.Parallel()
	payload := `{"command":"x","limits":{"execution_time":100,"output_size":1}}`
	b, err := WithLimits([]byte(payload), Limits{ExecutionTime: Seconds(2 * time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	var got AgentRequest
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	want := AgentRequest{Request: Request{Command: "x"}, Limits: &Limits{ExecutionTime: Seconds(2 * time.Second), OutputSize: 1}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("decoded request mismatch (-want +got):\n%s", diff)
	}
}

func TestSeconds(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		want    Seconds
		wantErr bool
	}{
		{in: "2", want: Seconds(2 * time.Second)},
		{in: "0.25", want: Seconds(250 * time.Millisecond)},
		{in: "0", want: 0},
		{in: "null", want: 0},
		{in: "-1", wantErr: true},
		{in: "1e300", wantErr: true},
		{in: `"2s"`, wantErr: true},
	}
	for _, tt := range tests {
		var got Seconds
		err := json.Unmarshal([]byte(tt.in), &got)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("Unmarshal(%s) = %v, %v; want %v, error %v", tt.in, time.Duration(got), err, time.Duration(tt.want), tt.wantErr)
		}
	}
	if b, _ := json.Marshal(Seconds(1500 * time.Millisecond)); string(b) != "1.5" {
		t.Errorf("Marshal(1.5s) = %s, want 1.5", b)
	}
}

func TestCheckAnswer(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		raw     string
		want    [3]string
		wantErr string
	}{
		{name: "glot's answer", raw: `{"stdout":"a","stderr":"b","error":"c","duration":5}`, want: [3]string{"a", "b", "c"}},
		{name: "unknown fields of any type", raw: `{"stdout":"","stderr":"","error":"","usage":"x","runs":7,"new":{}}`},
		{name: "missing", raw: `{"stdout":""}`, wantErr: "answer has no stderr, error field"},
		{name: "not a string", raw: `{"stdout":1,"stderr":"","error":""}`,
			wantErr: "decode answer: json: cannot unmarshal number into Go struct field .stdout of type string"},
		{name: "null", raw: `{"stdout":null,"stderr":"","error":""}`, wantErr: "answer has no stdout field"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			stdout, stderr, errText, err := CheckAnswer([]byte(tt.raw))
			gotErr := ""
			if err != nil {
				gotErr = err.Error()
			}
			if gotErr != tt.wantErr {
				t.Fatalf("CheckAnswer() error = %q, want %q", gotErr, tt.wantErr)
			}
			if got := [3]string{stdout, stderr, errText}; got != tt.want {
				t.Errorf("CheckAnswer() = %q, want %q", got, tt.want)
			}
		})
	}
}
