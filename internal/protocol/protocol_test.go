package protocol

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestWithLimits(t *testing.T) {
	t.Parallel()
	lim := Limits{ExecutionTime: 1500 * time.Millisecond, OutputSize: 100}
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

// TestWithLimitsWins checks that the runner's limits replace limits the
// payload already has, as the agent decodes them.
func TestWithLimitsWins(t *testing.T) {
	t.Parallel()
	payload := `{"command":"x","limits":{"execution_time":100,"output_size":1}}`
	b, err := WithLimits([]byte(payload), Limits{ExecutionTime: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	var got AgentRequest
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	want := AgentRequest{Request: Request{Command: "x"}, Limits: &Limits{ExecutionTime: 2 * time.Second}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("decoded request mismatch (-want +got):\n%s", diff)
	}
}

func TestSeconds(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		want    seconds
		wantErr bool
	}{
		{in: "2", want: seconds(2 * time.Second)},
		{in: "0.25", want: seconds(250 * time.Millisecond)},
		{in: "0", want: 0},
		{in: "null", want: 0},
		{in: "-1", wantErr: true},
		{in: "1e300", wantErr: true},
		{in: `"2s"`, wantErr: true},
	}
	for _, tt := range tests {
		var got seconds
		err := json.Unmarshal([]byte(tt.in), &got)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("Unmarshal(%s) = %v, %v; want %v, error %v", tt.in, time.Duration(got), err, time.Duration(tt.want), tt.wantErr)
		}
	}
	if b, _ := json.Marshal(seconds(1500 * time.Millisecond)); string(b) != "1.5" {
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

func TestDecodeLimits(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		want    Limits
		wantErr string
	}{
		{in: `{"execution_time": 0.5, "output_size": 10, "memory": 7340032}`, want: Limits{ExecutionTime: 500 * time.Millisecond, OutputSize: 10, Memory: 7 << 20}},
		{in: `{}`},
		{in: `{"time": 1}`, wantErr: `json: unknown field "time"`},
		{in: `{"execution_time": "1"}`, wantErr: "want a number of seconds: json: cannot unmarshal string into Go value of type float64"},
		{in: `{"output_size": 1.5}`, wantErr: "json: cannot unmarshal number 1.5 into Go struct field limitsJSON.output_size of type int64"},
		{in: `{} {}`, wantErr: "more than one JSON value"},
	}
	for _, tt := range tests {
		got, err := DecodeLimits([]byte(tt.in))
		gotErr := ""
		if err != nil {
			gotErr = err.Error()
		}
		if gotErr != tt.wantErr || got != tt.want {
			t.Errorf("DecodeLimits(%s) = %+v, %q; want %+v, %q", tt.in, got, gotErr, tt.want, tt.wantErr)
		}
	}
}

func TestRunInputJSON(t *testing.T) {
	t.Parallel()
	in := []RunInput{{Stdin: "a"}, {Stdin: "b", ExecutionTime: 1500 * time.Millisecond}}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	if want := `[{"stdin":"a"},{"stdin":"b","execution_time":1.5}]`; string(b) != want {
		t.Errorf("Marshal() = %s, want %s", b, want)
	}
	var got []RunInput
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(in, got); diff != "" {
		t.Errorf("round trip mismatch (-want +got):\n%s", diff)
	}
}
