package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/docker/docker/api/types"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/pkg/stdcopy"
	"github.com/dockerrun/dockerrun"
)

// floorScript runs in the floor's container: it writes the program once,
// then for each line on stdin runs it and prints its start and end
// ($EPOCHREALTIME: no process is started to read the clock) and its first
// line of output.
const floorScript = `cd /home/glot && printf '%s' "$BENCH_PROGRAM" > main.py && echo ready &&
while read -r _; do s=$EPOCHREALTIME; python3 main.py > out; e=$EPOCHREALTIME; read -r line < out; echo "$s $e $line"; done`

// floorProgram is the python rows' program, as in their payload.
const floorProgram = "print('hello')\n"

// floorTarget measures the floor: how long the python rows' program takes
// to start and finish inside a running container of the same image, with
// the same settings (those of the plain API's containers). Its time is
// the one measured inside the container, from just before the program's
// process is started to just after it has exited.
type floorTarget struct {
	bn     *bench
	id     string
	hj     types.HijackedResponse
	lines  *bufio.Scanner
	stderr lockedBuffer // of the container, for errors
	mu     sync.Mutex   // one run at a time
}

// newFloor starts the floor's container for img, which must be python.
func (bn *bench) newFloor(ctx context.Context, img *benchImage) (*floorTarget, error) {
	plain, err := newPlainAPI(ctx, bn, img)
	if err != nil {
		return nil, fmt.Errorf("floor: %w", err)
	}
	cfg, host := plain.cfg, plain.host
	// An agent that separates privileges starts as root and runs the code
	// as the user it is told: run the program as that user.
	for _, kv := range cfg.Env {
		if user, ok := strings.CutPrefix(kv, dockerrun.EnvRunAs+"="); ok {
			cfg.User = user
		}
	}
	cfg.Cmd = []string{"bash", "-c", floorScript}
	cfg.Env = append(cfg.Env, "BENCH_PROGRAM="+floorProgram)
	resp, err := bn.cli.ContainerCreate(ctx, &cfg, &host, nil, nil, "")
	if err != nil {
		return nil, fmt.Errorf("floor: create: %w", err)
	}
	t := &floorTarget{bn: bn, id: resp.ID}
	if err := t.start(ctx); err != nil {
		t.close()
		return nil, err
	}
	return t, nil
}

func (t *floorTarget) start(ctx context.Context) error {
	var err error
	t.hj, err = t.bn.cli.ContainerAttach(ctx, t.id, container.AttachOptions{Stream: true, Stdin: true, Stdout: true, Stderr: true})
	if err != nil {
		return fmt.Errorf("floor: attach: %w", err)
	}
	pr, pw := io.Pipe()
	go func() {
		_, err := stdcopy.StdCopy(pw, &t.stderr, t.hj.Reader)
		pw.CloseWithError(err)
	}()
	t.lines = bufio.NewScanner(pr)
	if err := t.bn.cli.ContainerStart(ctx, t.id, container.StartOptions{}); err != nil {
		return fmt.Errorf("floor: start: %w", err)
	}
	if !t.lines.Scan() || t.lines.Text() != "ready" {
		return fmt.Errorf("floor: the container did not start its loop: %q, stderr %.200q, %v", t.lines.Text(), t.stderr.String(), t.lines.Err())
	}
	return nil
}

// runTimed runs the program once and returns the time it took inside the
// container.
func (t *floorTarget) runTimed(ctx context.Context) (time.Duration, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, err := t.hj.Conn.Write([]byte("\n")); err != nil {
		return 0, fmt.Errorf("floor: write: %w", err)
	}
	if !t.lines.Scan() {
		return 0, fmt.Errorf("floor: the loop ended: stderr %.200q, %v", t.stderr.String(), t.lines.Err())
	}
	f := strings.Fields(t.lines.Text())
	if len(f) != 3 || f[2] != "hello" {
		return 0, fmt.Errorf("floor: got %q, want START END hello", t.lines.Text())
	}
	s, err1 := strconv.ParseFloat(f[0], 64)
	e, err2 := strconv.ParseFloat(f[1], 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("floor: got %q, want two times in seconds", t.lines.Text())
	}
	return time.Duration((e - s) * float64(time.Second)), nil
}

func (t *floorTarget) run(ctx context.Context) (bool, error) {
	_, err := t.runTimed(ctx)
	return false, err
}

func (t *floorTarget) owner() string { return "" }
func (t *floorTarget) poolSize() int { return 0 }

func (t *floorTarget) close() error {
	if t.hj.Conn != nil {
		t.hj.Close()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return t.bn.cli.ContainerRemove(ctx, t.id, container.RemoveOptions{Force: true})
}

// lockedBuffer is a buffer safe for concurrent use.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
