package main

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestReadRequest(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"one object", `{"a":1}`, `{"a":1}`},
		{"space around", " \n{\"a\": [1, {}]}\n", `{"a": [1, {}]}`},
		{"what follows is not read", `{"a":1} {"b":2}`, `{"a":1}`},
		{"not JSON: everything", `{"a":`, `{"a":`},
		{"garbage: everything", "x{}", "x{}"},
		{"empty", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := readRequest(strings.NewReader(tt.in))
			if err != nil {
				t.Fatalf("readRequest(%q) error: %v", tt.in, err)
			}
			if diff := cmp.Diff(tt.want, string(got)); diff != "" {
				t.Errorf("readRequest(%q) mismatch (-want +got):\n%s", tt.in, diff)
			}
		})
	}
}

// TestReadRequestOpenStdin checks that the request is read while stdin is
// still open: the agent must not wait for its end.
func TestReadRequestOpenStdin(t *testing.T) {
	pr, pw := io.Pipe()
	defer pw.Close()
	go pw.Write([]byte(`{"files":[]}`))
	got := make(chan string, 1)
	go func() {
		b, _ := readRequest(pr)
		got <- string(b)
	}()
	select {
	case s := <-got:
		if s != `{"files":[]}` {
			t.Errorf("readRequest() = %q", s)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("readRequest() still waits for the end of stdin after a whole object")
	}
}

func TestPlainExec(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "a.out"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "data"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		script string
		want   []string // nil: run with sh -c
	}{
		{"exec sh main.py", []string{"sh", "main.py"}},
		{"exec ./a.out", []string{"./a.out"}},
		{"exec sh -cp . Main", []string{"sh", "-cp", ".", "Main"}},
		{"exec ./data", nil},            // not executable
		{"exec ./missing", nil},         // not there
		{"exec no-such-program-x", nil}, // not in PATH
		{"sh main.py", nil},             // no exec: sh stays the parent
		{"exec sh 'a b.py'", nil},       // quoting
		{"exec sh  main.py", nil},       // an empty word
		{"exec sh a\necho b", nil},      // two commands
		{"exec sh $HOME", nil},          // expansion
		{"exec sh *.py", nil},           // glob
		{"exec -a x sh", nil},           // an option of exec
		{"exec ", nil},
	}
	for _, tt := range tests {
		got, ok := plainExec(tt.script, dir)
		if ok != (tt.want != nil) {
			t.Errorf("plainExec(%q) = %q, %v; want %q", tt.script, got, ok, tt.want)
			continue
		}
		if diff := cmp.Diff(tt.want, got); ok && diff != "" {
			t.Errorf("plainExec(%q) mismatch (-want +got):\n%s", tt.script, diff)
		}
	}
}

// TestRunCommandDirect checks that a run command started without a shell
// ends like one started with sh -c.
func TestRunCommandDirect(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "prog"), []byte("#!/bin/sh\necho out; echo err >&2; exit 3\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "noshebang"), []byte("echo from sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	type result struct {
		Stdout, Stderr string
		Exit           int
		Err            bool
	}
	for _, script := range []string{"exec ./prog", "exec ./noshebang", "exec ./missing"} {
		t.Run(script, func(t *testing.T) {
			run := func(script string) result {
				o := runCommand(context.Background(), command{script: script, dir: dir, env: os.Environ()})
				return result{string(o.stdout), string(o.stderr), o.status.ExitStatus(), o.err != nil}
			}
			// ":;" makes it a script that plainExec leaves to sh.
			want, got := run(":; "+script), run(script)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("runCommand(%q) mismatch with sh -c (-want +got):\n%s", script, diff)
			}
		})
	}
}
