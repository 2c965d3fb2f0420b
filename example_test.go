package dockerrun_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"sync"
	"time"

	"github.com/dockerrun/dockerrun"
)

// A Runner runs one payload per container; glot's images and ours read
// {"language", "files", "stdin"} and answer stdout, stderr and error.
func ExampleRunner_Run() {
	r, err := dockerrun.New(
		dockerrun.WithMaxExecutionTime(5*time.Second),
		dockerrun.WithMemory(128<<20),
	)
	if err != nil {
		log.Fatal(err)
	}
	defer r.Close(context.Background())

	res, err := r.Run(context.Background(), "dockerrun/python:latest", map[string]any{
		"language": "python",
		"files":    []map[string]string{{"name": "main.py", "content": "print(42)"}},
	})
	if err != nil {
		log.Fatalf("run failed (code %s): %v", dockerrun.ErrorCode(err), err)
	}
	fmt.Print(res.Stdout)
}

// Errors carry stable codes; the Err* sentinels match them with errors.Is.
func ExampleErrorCode() {
	err := error(&dockerrun.Error{Code: dockerrun.CodeExecutionTime, Message: "the run took longer than 5s and was killed"})
	fmt.Println(dockerrun.ErrorCode(err))
	fmt.Println(errors.Is(err, dockerrun.ErrExecutionTime), errors.Is(err, dockerrun.ErrOutputSize))
	// Output:
	// limits.execution_time
	// true false
}

// New checks every option at once and names each invalid one.
func ExampleNew() {
	_, err := dockerrun.New(
		dockerrun.WithMaxExecutionTime(-time.Second),
		dockerrun.WithCapDrop("not a capability"),
	)
	fmt.Println(errors.Is(err, dockerrun.ErrInvalidConfig))
	fmt.Println(err)
	// Output:
	// true
	// config.invalid: max execution time: -1s: want a positive duration; cap drop: "not a capability": want a capability name such as NET_ADMIN or ALL
}

// A warm pool keeps containers started ahead of time, each used for one
// run. New does no I/O: the pool starts filling at the first Ping (or Run).
func ExampleWithWarmPool() {
	ctx := context.Background()
	r, err := dockerrun.New(dockerrun.WithWarmPool(map[string]int{"dockerrun/python:latest": 2}))
	if err != nil {
		log.Fatal(err)
	}
	defer r.Close(ctx) // removes the pool's containers too
	if err := r.Ping(ctx); err != nil {
		log.Fatal(err)
	}

	res, err := r.Run(ctx, "dockerrun/python:latest", map[string]any{
		"language": "python",
		"files":    []map[string]string{{"name": "main.py", "content": "print(42)"}},
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(res.Stdout, res.Warm) // warm if the pool had filled by then
}

// Test cases run in one container: the program is built once and run once
// per entry of Runs. WithLimits lowers the runner's limits for one call.
func ExampleWithLimits() {
	ctx := context.Background()
	r, err := dockerrun.New()
	if err != nil {
		log.Fatal(err)
	}
	defer r.Close(ctx)

	req := dockerrun.Request{
		Language: "c",
		Files: []dockerrun.File{{Name: "main.c", Content: `#include <stdio.h>
int main(void) { int a, b; scanf("%d %d", &a, &b); printf("%d\n", a + b); }`}},
		Runs: []dockerrun.RunInput{
			{Stdin: "1 2"},
			{Stdin: "40 2", ExecutionTime: 500 * time.Millisecond}, // this case's own limit
		},
	}
	res, err := r.Run(ctx, "dockerrun/c:latest", req,
		dockerrun.WithLimits(dockerrun.Limits{ExecutionTime: 3 * time.Second, Memory: 64 << 20}))
	if err != nil {
		log.Fatal(err)
	}
	ans, err := res.Answer()
	if err != nil {
		log.Fatal(err)
	}
	if ans.Error != "" { // the build failed: its output is in Stdout and Stderr
		log.Fatalf("build: %s\n%s", ans.Error, ans.Stderr)
	}
	for i, run := range ans.Runs {
		fmt.Printf("case %d: %q %q, %v CPU, %d bytes peak\n", i, run.Stdout, run.Error, run.Usage.CPUTime, run.Usage.Memory)
	}
}

// countRuns is an Observer that counts runs by code; it ignores the rest.
type countRuns struct {
	mu    sync.Mutex
	codes map[dockerrun.Code]int
}

func (c *countRuns) RunDone(info dockerrun.RunInfo) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.codes[info.Code]++ // "" for a run that answered
}

func (c *countRuns) ContainersReaped(n int) {}
func (c *countRuns) DockerError(op string)  {}

// An Observer sees every run, reaped container and failed Docker call, for
// metrics; Stats says what the Runner holds now. The package metrics is an
// Observer that exports all of it to Prometheus.
func ExampleWithObserver() {
	obs := &countRuns{codes: map[dockerrun.Code]int{}}
	r, err := dockerrun.New(dockerrun.WithObserver(obs), dockerrun.WithAllowedImages("dockerrun/python:latest"))
	if err != nil {
		log.Fatal(err)
	}
	defer r.Close(context.Background())

	// Refused before any container exists: no daemon needed.
	_, err = r.Run(context.Background(), "someone/else:latest", map[string]any{})
	fmt.Println(dockerrun.ErrorCode(err))
	fmt.Println(obs.codes)
	fmt.Printf("%+v\n", r.Stats())
	// Output:
	// image.not_allowed
	// map[image.not_allowed:1]
	// {Running:0 Waiting:0 WarmReady:map[]}
}

// Every container gets the builtin seccomp profile unless told otherwise.
// A profile of one's own is Docker's JSON format, for example the builtin
// profile edited and saved to a file.
func ExampleWithSeccompProfile() {
	profile, err := os.ReadFile("/etc/dockerrun/seccomp.json")
	if err != nil {
		log.Fatal(err)
	}
	r, err := dockerrun.New(dockerrun.WithSeccompProfile(string(profile)))
	if err != nil {
		log.Fatal(err) // names what is wrong with the profile
	}
	defer r.Close(context.Background())
}

// Running without seccomp takes two options, so that it is never a typo.
func ExampleWithDangerouslyAllowUnconfinedSeccomp() {
	_, err := dockerrun.New(dockerrun.WithSeccompProfile(dockerrun.SeccompUnconfined))
	fmt.Println(errors.Is(err, dockerrun.ErrInvalidConfig))

	r, err := dockerrun.New(
		dockerrun.WithSeccompProfile(dockerrun.SeccompUnconfined),
		dockerrun.WithDangerouslyAllowUnconfinedSeccomp(true), // and New logs a warning
	)
	fmt.Println(err)
	r.Close(context.Background())
	// Output:
	// true
	// <nil>
}
