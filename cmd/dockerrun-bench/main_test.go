package main

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestParseFlags(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		want     []string // substrings of the error, nil for none
		clients  []int
		methods  []method
		runtimes []string // default runc
	}{
		{name: "defaults", clients: []int{1, 4, 16}, methods: allMethods},
		{name: "some methods", args: []string{"-methods", "engine-api, http-warm", "-concurrency", "2"}, clients: []int{2}, methods: []method{engineAPI, httpWarm}},
		{
			name: "every problem at once",
			args: []string{"-concurrency", "1,x", "-images", "ruby", "-methods", "docker", "-runs", "0", "-waves", "0", "-passes", "0"},
			want: []string{`-concurrency: "x"`, `-images: "ruby"`, `-methods: "docker"`, "-runs: 0", "-waves: 0", "-passes"},
		},
		{name: "runtimes", args: []string{"-runtime", "runc, runsc"}, clients: []int{1, 4, 16}, methods: allMethods, runtimes: []string{"runc", "runsc"}},
		{name: "a runtime twice", args: []string{"-runtime", "runsc,runsc"}, want: []string{`-runtime: "runsc"`}},
		{name: "pool smaller than the concurrency", args: []string{"-concurrency", "32", "-workers", "128"}, want: []string{"-pool: 16"}},
		{name: "workers not above the pool", args: []string{"-pool", "16", "-workers", "16", "-rss-clients", "0"}, want: []string{"-workers: 16"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, err := parseFlags(tt.args)
			if len(tt.want) > 0 {
				if err == nil {
					t.Fatalf("parseFlags(%q) succeeded, want an error with %q", tt.args, tt.want)
				}
				for _, w := range tt.want {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("parseFlags(%q) error = %q, want it to contain %q", tt.args, err, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("parseFlags(%q) error: %v", tt.args, err)
			}
			if diff := cmp.Diff(tt.clients, o.clients); diff != "" {
				t.Errorf("clients mismatch (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(methodNames(tt.methods), methodNames(o.methods)); diff != "" {
				t.Errorf("methods mismatch (-want +got):\n%s", diff)
			}
			if tt.runtimes == nil {
				tt.runtimes = []string{"runc"}
			}
			if diff := cmp.Diff(tt.runtimes, o.runtimes); diff != "" {
				t.Errorf("runtimes mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestPercentile(t *testing.T) {
	ms := func(n ...int) []time.Duration {
		var d []time.Duration
		for _, x := range n {
			d = append(d, time.Duration(x)*time.Millisecond)
		}
		return d
	}
	tests := []struct {
		name string
		d    []time.Duration
		p    float64
		want time.Duration
	}{
		{"empty", nil, 50, 0},
		{"one", ms(7), 99, 7 * time.Millisecond},
		{"p50 of four is the second", ms(40, 10, 30, 20), 50, 20 * time.Millisecond},
		{"p95 of 32 is the 31st", ms(32, 31, 30, 29, 28, 27, 26, 25, 24, 23, 22, 21, 20, 19, 18, 17, 16, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1), 95, 31 * time.Millisecond},
		{"p100 is the largest", ms(3, 9, 1), 100, 9 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := percentile(tt.d, tt.p); got != tt.want {
				t.Errorf("percentile(%v, %v) = %v, want %v", tt.d, tt.p, got, tt.want)
			}
		})
	}
}

func TestReportFailed(t *testing.T) {
	tests := []struct {
		name string
		r    report
		want int
	}{
		{"nothing measured", report{}, 0},
		{"clean", report{cells: []*cell{{}, {}}, rss: &rssRun{}, flood: &floodRun{}}, 0},
		{"cells", report{cells: []*cell{{errs: 2}, {}, {errs: 1}}}, 3},
		{"everywhere", report{cells: []*cell{{errs: 1}}, rss: &rssRun{errs: 4}, flood: &floodRun{errs: 2}}, 7},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.r.failed(); got != tt.want {
				t.Errorf("failed() = %d, want %d", got, tt.want)
			}
		})
	}
}
