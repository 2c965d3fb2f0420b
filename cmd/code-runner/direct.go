package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
)

// readRequest reads the request from stdin: one JSON value. It returns as
// soon as the value is complete, without waiting for stdin to be closed:
// the runner closes it right after the payload, but the end of the stream
// takes its own trip through the daemon. What follows the value is not
// read. When stdin does not hold one JSON value, it reads to the end, and
// parseRequest says what is wrong.
func readRequest(r io.Reader) ([]byte, error) {
	var seen bytes.Buffer
	dec := json.NewDecoder(io.TeeReader(r, &seen))
	var raw json.RawMessage
	err := dec.Decode(&raw)
	if err == nil {
		return raw, nil
	}
	var syntax *json.SyntaxError
	if err != io.EOF && err != io.ErrUnexpectedEOF && !errors.As(err, &syntax) {
		return nil, err // reading failed
	}
	rest, err := io.ReadAll(r)
	return append(seen.Bytes(), rest...), err
}

// startCommand starts script with setup applied to its *exec.Cmd. A script
// of the form "exec PROGRAM ARG..." with plain words only, which is the
// form of every default run command, is started directly, without a
// shell: the same process, one start of sh less. Anything else is run
// with sh -c, and so is a direct start that fails (sh then reports the
// failure as it always does, e.g. "not found" and exit code 127).
func startCommand(script, dir string, setup func(*exec.Cmd)) (*exec.Cmd, error) {
	if argv, ok := plainExec(script, dir); ok {
		cmd := exec.Command(argv[0], argv[1:]...)
		setup(cmd)
		if cmd.Err == nil && cmd.Start() == nil {
			return cmd, nil
		}
	}
	cmd := exec.Command("/bin/sh", "-c", script)
	setup(cmd)
	return cmd, cmd.Start()
}

// plainExec returns the program and arguments of a script "exec WORD...",
// where each word is made of characters that sh takes literally, and the
// program exists and is executable (found in PATH, or relative to dir).
func plainExec(script, dir string) ([]string, bool) {
	rest, ok := strings.CutPrefix(script, "exec ")
	if !ok {
		return nil, false
	}
	argv := strings.Split(rest, " ")
	if strings.HasPrefix(argv[0], "-") {
		return nil, false
	}
	for _, w := range argv {
		if w == "" || strings.Trim(w, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._/+-,:@%") != "" {
			return nil, false
		}
	}
	if strings.Contains(argv[0], "/") {
		path := argv[0]
		if !filepath.IsAbs(path) {
			path = filepath.Join(dir, path)
		}
		if syscall.Access(path, 1 /* X_OK */) != nil {
			return nil, false
		}
	} else if _, err := exec.LookPath(argv[0]); err != nil {
		return nil, false
	}
	return argv, true
}
