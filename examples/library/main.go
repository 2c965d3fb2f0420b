// Command library embeds dockerrun in a Go program: it runs a Python snippet
// in a fresh, locked-down container and prints what the snippet printed.
//
//	examples/images/build.sh python   # once: builds dockerrun/python:latest
//	go run ./examples/library
//
// It needs a Docker daemon (DOCKER_HOST or the local socket).
package main

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/dockerrun/dockerrun"
)

func main() {
	r, err := dockerrun.New(
		dockerrun.WithMaxExecutionTime(5*time.Second),
		dockerrun.WithMemory(128<<20),
		dockerrun.WithMaxOutputSize(64<<10),
	)
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	// Close removes every container the runner still has.
	defer r.Close(ctx)
	if err := r.Ping(ctx); err != nil {
		log.Fatal(err)
	}

	// The payload is what glot's images (and ours) read from stdin; a
	// map[string]any or any JSON object works as well as the typed Request.
	payload := dockerrun.Request{
		Language: "python",
		Files: []dockerrun.File{{
			Name:    "main.py",
			Content: "import sys\nprint(f'Hello from Python {sys.version_info.major}.{sys.version_info.minor}')\nprint(sum(range(101)))",
		}},
	}
	res, err := r.Run(ctx, "dockerrun/python:latest", payload)
	switch {
	case errors.Is(err, dockerrun.ErrExecutionTime):
		log.Fatal("the snippet ran too long")
	case errors.Is(err, dockerrun.ErrContainerCreate):
		log.Fatalf("%v\n(build the image first: examples/images/build.sh python)", err)
	case err != nil:
		log.Fatalf("run failed with code %s: %v", dockerrun.ErrorCode(err), err)
	}
	fmt.Print(res.Stdout)
	if res.Error != "" {
		fmt.Println("the program failed:", res.Error)
	}
	fmt.Printf("(ran in %v)\n", res.Duration.Round(time.Millisecond))
	// dockerrun's images also report what the program used.
	if ans, err := res.Answer(); err == nil && ans.Usage != nil {
		fmt.Printf("(%v of CPU, %d KiB of memory at the peak)\n", ans.Usage.CPUTime.Round(time.Millisecond), ans.Usage.Memory>>10)
	}
}
