// Command probe is the agent of the test image that the integration tests
// build. It speaks the container protocol, and its payload's "mode" makes it
// misbehave in the ways the runner must survive.
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

type request struct {
	Mode  string          `json:"mode"`
	Value json.RawMessage `json:"value"`
	Sleep string          `json:"sleep"`
	Bytes int             `json:"bytes"`
}

func main() {
	in, err := io.ReadAll(os.Stdin)
	if err != nil {
		fmt.Fprintln(os.Stderr, "read stdin:", err)
		os.Exit(1)
	}
	var req request
	if err := json.Unmarshal(in, &req); err != nil {
		fmt.Fprintln(os.Stderr, "decode request:", err)
		os.Exit(1)
	}
	if req.Sleep != "" {
		d, _ := time.ParseDuration(req.Sleep)
		time.Sleep(d)
	}
	switch req.Mode {
	case "echo": // the payload, verbatim, as stdout; an extra field
		answer(string(in), "", "", map[string]any{"duration": 1234, "extra": []int{1, 2}})
	case "env":
		answer(strings.Join(os.Environ(), "\n"), "", "", nil)
	case "id":
		status, _ := os.ReadFile("/proc/self/status")
		answer(fmt.Sprintf("uid=%d gid=%d host=%s", os.Getuid(), os.Getgid(), hostname()), string(status), "", nil)
	case "trickle": // an answer that never ends, one byte a tick
		os.Stdout.WriteString(`{"stdout": "`)
		for {
			os.Stdout.WriteString("x")
			time.Sleep(100 * time.Millisecond)
		}
	case "flood": // endless stdout
		buf := []byte(strings.Repeat("y", 64<<10))
		for {
			os.Stdout.Write(buf)
		}
	case "big": // an answer of about Bytes bytes
		answer(strings.Repeat("z", req.Bytes), "", "", nil)
	case "stderr":
		fmt.Fprintln(os.Stderr, "agent crashed: boom")
		os.Exit(2)
	case "stderr-and-answer":
		// The runner answers as soon as stdout holds an object; stderr
		// written well before it must still fail the run.
		fmt.Fprintln(os.Stderr, "warning from agent")
		time.Sleep(200 * time.Millisecond)
		answer("ok", "", "", nil)
	case "invalid":
		os.Stdout.WriteString("this is not json\n")
	case "not-object":
		os.Stdout.WriteString(`["stdout", "stderr"]`)
	case "missing-field":
		os.Stdout.WriteString(`{"stdout": "a", "stderr": ""}`)
	case "silent":
		os.Exit(3)
	case "memory": // allocate until the kernel says no
		var hold [][]byte
		for {
			b := make([]byte, 16<<20)
			for i := range b {
				b[i] = 1
			}
			hold = append(hold, b)
		}
	default:
		answer("", "", "unknown mode "+req.Mode, nil)
	}
}

func hostname() string {
	h, _ := os.Hostname()
	return h
}

func answer(stdout, stderr, errText string, extra map[string]any) {
	m := map[string]any{"stdout": stdout, "stderr": stderr, "error": errText}
	for k, v := range extra {
		m[k] = v
	}
	json.NewEncoder(os.Stdout).Encode(m)
}
