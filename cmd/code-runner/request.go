package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"strings"

	"github.com/dockerrun/dockerrun/internal/protocol"
)

// The request's types are the protocol's, defined once in internal/protocol.
type (
	Request         = protocol.Request
	File            = protocol.File
	RunInstructions = protocol.RunInstructions
)

// plan is what the agent will run: build commands, then the run command, all
// shell scripts run with sh -c.
type plan struct {
	build []string
	run   string
}

// parseRequest decodes and validates a request. Its errors are meant for the
// user: they end up in the result's "error" field.
func parseRequest(data []byte) (*protocol.AgentRequest, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, errors.New("empty request: expected a JSON object on stdin")
	}
	var req protocol.AgentRequest
	if err := json.Unmarshal(data, &req); err != nil {
		return nil, fmt.Errorf("decode request: %w", err)
	}
	// glot's agent runs a command without files; the language defaults
	// and runInstructions need at least one.
	if len(req.Files) == 0 && (strings.TrimSpace(req.Command) == "" || req.RunInstructions != nil) {
		return nil, errors.New("request has no files")
	}
	switch {
	case req.Runs == nil:
	case len(req.Runs) == 0:
		return nil, fmt.Errorf("runs is empty: give 1 to %d entries, or leave it out and give stdin", protocol.MaxRuns)
	case len(req.Runs) > protocol.MaxRuns:
		return nil, fmt.Errorf("runs has %d entries: at most %d are allowed", len(req.Runs), protocol.MaxRuns)
	case req.Stdin != "":
		return nil, errors.New("request has both stdin and runs: give each run its own stdin")
	}
	seen := make(map[string]bool, len(req.Files))
	for _, f := range req.Files {
		if err := checkName(f.Name); err != nil {
			return nil, err
		}
		if seen[f.Name] {
			return nil, fmt.Errorf("file name %q is given twice", f.Name)
		}
		seen[f.Name] = true
	}
	return &req, nil
}

// planFor returns the commands to run for the request.
func planFor(r *Request) (plan, error) {
	if ri := r.RunInstructions; ri != nil {
		if strings.TrimSpace(ri.RunCommand) == "" {
			return plan{}, errors.New("runInstructions has no runCommand")
		}
		for i, b := range ri.BuildCommands {
			if strings.TrimSpace(b) == "" {
				return plan{}, fmt.Errorf("runInstructions.buildCommands[%d] is empty", i)
			}
		}
		return plan{build: ri.BuildCommands, run: ri.RunCommand}, nil
	}
	if strings.TrimSpace(r.Command) != "" {
		return plan{run: r.Command}, nil
	}
	if r.Language == "" {
		return plan{}, errors.New("request has no language and no command")
	}
	names := make([]string, len(r.Files))
	for i, f := range r.Files {
		names[i] = f.Name
	}
	p, ok := defaultPlan(strings.ToLower(r.Language), names)
	if !ok {
		return plan{}, fmt.Errorf("unknown language %q: give a command or runInstructions", r.Language)
	}
	return p, nil
}

// defaultPlan returns glot's default commands for a language, with names[0]
// as the main file. Run commands start with exec, so that the program replaces
// the shell (dash does not do that by itself) and a death by a signal is
// reported as such rather than as the shell's exit code 128+N.
func defaultPlan(language string, names []string) (plan, bool) {
	main := names[0]
	interpreted := func(interpreter string) plan {
		return plan{run: "exec " + interpreter + " " + shellArg(main)}
	}
	compiled := func(build string, exts ...string) plan {
		return plan{build: []string{build + " " + shellArgs(withExt(names, exts...))}, run: "exec ./a.out"}
	}
	switch language {
	case "python":
		return interpreted("python3"), true
	case "bash":
		return interpreted("bash"), true
	case "javascript":
		return interpreted("node"), true
	case "ruby":
		return interpreted("ruby"), true
	case "perl":
		return interpreted("perl"), true
	case "php":
		return interpreted("php"), true
	case "lua":
		return interpreted("lua"), true
	case "c":
		p := compiled("cc -o a.out", ".c")
		p.build[0] += " -lm"
		return p, true
	case "cpp":
		return compiled("c++ -std=c++17 -o a.out", ".cpp", ".cc", ".cxx", ".c++"), true
	case "go":
		return compiled("go build -o a.out", ".go"), true
	case "rust":
		return plan{build: []string{"rustc -o a.out " + shellArg(main)}, run: "exec ./a.out"}, true
	case "haskell":
		return plan{build: []string{"ghc -v0 -outputdir .ghc-out -o a.out " + shellArg(main)}, run: "exec ./a.out"}, true
	case "java":
		class := strings.TrimSuffix(path.Base(main), ".java")
		return plan{
			build: []string{"javac -d . " + shellArgs(withExt(names, ".java"))},
			run:   "exec java -cp . " + shellArg(class),
		}, true
	}
	return plan{}, false
}

// withExt returns the names that end in one of exts, or names[:1] if none
// does, so that a compiler always gets the main file.
func withExt(names []string, exts ...string) []string {
	var out []string
	for _, n := range names {
		for _, e := range exts {
			if strings.HasSuffix(n, e) {
				out = append(out, n)
				break
			}
		}
	}
	if len(out) == 0 {
		return names[:1]
	}
	return out
}

// shellArgs quotes each name with shellArg and joins them with spaces.
func shellArgs(names []string) string {
	quoted := make([]string, len(names))
	for i, n := range names {
		quoted[i] = shellArg(n)
	}
	return strings.Join(quoted, " ")
}

// shellArg quotes a relative file name for sh, so that it is one argument
// that no command mistakes for an option.
func shellArg(name string) string {
	if strings.HasPrefix(name, "-") {
		name = "./" + name
	}
	if name != "" && strings.Trim(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._/+-") == "" {
		return name
	}
	return "'" + strings.ReplaceAll(name, "'", `'\''`) + "'"
}
