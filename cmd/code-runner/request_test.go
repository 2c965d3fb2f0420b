package main

import (
	"strings"
	"testing"
	"time"

	"github.com/dockerrun/dockerrun/internal/protocol"

	"github.com/google/go-cmp/cmp"
)

func TestParseRequest(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		data    string
		want    *Request // as the Request of the parsed AgentRequest
		wantErr string
	}{
		{
			name: "classic form",
			data: `{"language":"python","files":[{"name":"main.py","content":"print(1)"}],"stdin":"x","command":""}`,
			want: &Request{Language: "python", Files: []File{{Name: "main.py", Content: "print(1)"}}, Stdin: "x"},
		},
		{
			name: "run instructions form",
			data: `{"runInstructions":{"buildCommands":["cc main.c"],"runCommand":"./a.out"},"files":[{"name":"main.c","content":""}]}`,
			want: &Request{
				Files:           []File{{Name: "main.c"}},
				RunInstructions: &RunInstructions{BuildCommands: []string{"cc main.c"}, RunCommand: "./a.out"},
			},
		},
		{
			name: "command without language, no stdin, unknown fields ignored",
			data: `{"command":"cat a/b.txt","files":[{"name":"a/b.txt","content":"hi"}],"extra":1}`,
			want: &Request{Command: "cat a/b.txt", Files: []File{{Name: "a/b.txt", Content: "hi"}}},
		},
		{name: "null stdin", data: `{"command":"true","files":[{"name":"f"}],"stdin":null}`,
			want: &Request{Command: "true", Files: []File{{Name: "f"}}}},
		{name: "empty input", data: " \n", wantErr: "empty request: expected a JSON object on stdin"},
		{name: "not JSON", data: "hello", wantErr: "decode request: invalid character 'h' looking for beginning of value"},
		{name: "wrong type", data: `{"files":"main.py"}`, wantErr: "decode request: json: cannot unmarshal string into Go struct field AgentRequest.Request.files of type []protocol.File"},
		{name: "no files", data: `{"language":"python"}`, wantErr: "request has no files"},
		{name: "empty files", data: `{"language":"python","files":[]}`, wantErr: "request has no files"},
		{name: "empty name", data: `{"language":"python","files":[{"name":"","content":"x"}]}`, wantErr: "empty file name"},
		{name: "missing name", data: `{"language":"python","files":[{"content":"x"}]}`, wantErr: "empty file name"},
		{name: "absolute name", data: `{"language":"python","files":[{"name":"/etc/passwd"}]}`,
			wantErr: `file name "/etc/passwd" is absolute: names must be relative to the work directory`},
		{name: "command without files, as glot's agent allows", data: `{"command":"echo hi","files":[]}`,
			want: &Request{Command: "echo hi", Files: []File{}}},
		{name: "run instructions without files", data: `{"runInstructions":{"runCommand":"x"},"files":[]}`, wantErr: "request has no files"},
		{name: "runs", data: `{"command":"cat","files":[{"name":"f"}],"runs":[{"stdin":"a"},{"stdin":"b","execution_time":1.5}]}`,
			want: &Request{Command: "cat", Files: []File{{Name: "f"}}, Runs: []protocol.RunInput{{Stdin: "a"}, {Stdin: "b", ExecutionTime: 1500 * time.Millisecond}}}},
		{name: "empty runs", data: `{"command":"cat","files":[{"name":"f"}],"runs":[]}`,
			wantErr: "runs is empty: give 1 to 100 entries, or leave it out and give stdin"},
		{name: "too many runs", data: `{"command":"cat","files":[{"name":"f"}],"runs":[` + strings.Repeat(`{},`, 100) + `{}]}`,
			wantErr: "runs has 101 entries: at most 100 are allowed"},
		{name: "stdin and runs", data: `{"command":"cat","files":[{"name":"f"}],"stdin":"x","runs":[{}]}`,
			wantErr: "request has both stdin and runs: give each run its own stdin"},
		{name: "negative run time limit", data: `{"command":"cat","files":[{"name":"f"}],"runs":[{"execution_time":-1}]}`,
			wantErr: "decode request: -1 seconds is out of range: want 0 or more"},
		{name: "duplicate name", data: `{"language":"python","files":[{"name":"a"},{"name":"a"}]}`, wantErr: `file name "a" is given twice`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := parseRequest([]byte(tt.data))
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("parseRequest() error = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseRequest() error = %v", err)
			}
			if diff := cmp.Diff(tt.want, &got.Request); diff != "" {
				t.Errorf("parseRequest() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestPlan(t *testing.T) {
	t.Parallel()
	files := func(names ...string) []File {
		fs := make([]File, len(names))
		for i, n := range names {
			fs[i] = File{Name: n}
		}
		return fs
	}
	tests := []struct {
		name    string
		req     Request
		want    plan
		wantErr string
	}{
		{name: "python", req: Request{Language: "python", Files: files("main.py", "lib.py")}, want: plan{run: "exec python3 main.py"}},
		{name: "language is case-insensitive", req: Request{Language: "Bash", Files: files("main.sh")}, want: plan{run: "exec bash main.sh"}},
		{name: "javascript", req: Request{Language: "javascript", Files: files("main.js")}, want: plan{run: "exec node main.js"}},
		{name: "ruby", req: Request{Language: "ruby", Files: files("main.rb")}, want: plan{run: "exec ruby main.rb"}},
		{name: "perl", req: Request{Language: "perl", Files: files("main.pl")}, want: plan{run: "exec perl main.pl"}},
		{name: "php", req: Request{Language: "php", Files: files("main.php")}, want: plan{run: "exec php main.php"}},
		{name: "lua", req: Request{Language: "lua", Files: files("main.lua")}, want: plan{run: "exec lua main.lua"}},
		{name: "c compiles every .c file", req: Request{Language: "c", Files: files("main.c", "util.h", "src/util.c")},
			want: plan{build: []string{"cc -o a.out main.c src/util.c -lm"}, run: "exec ./a.out"}},
		{name: "cpp", req: Request{Language: "cpp", Files: files("main.cpp", "a.cc", "a.h")},
			want: plan{build: []string{"c++ -std=c++17 -o a.out main.cpp a.cc"}, run: "exec ./a.out"}},
		{name: "c without .c files compiles the main file", req: Request{Language: "c", Files: files("prog")},
			want: plan{build: []string{"cc -o a.out prog -lm"}, run: "exec ./a.out"}},
		{name: "go", req: Request{Language: "go", Files: files("main.go", "x.go")},
			want: plan{build: []string{"go build -o a.out main.go x.go"}, run: "exec ./a.out"}},
		{name: "rust", req: Request{Language: "rust", Files: files("main.rs")},
			want: plan{build: []string{"rustc -o a.out main.rs"}, run: "exec ./a.out"}},
		{name: "java", req: Request{Language: "java", Files: files("Main.java", "Util.java")},
			want: plan{build: []string{"javac -d . Main.java Util.java"}, run: "exec java -cp . Main"}},
		{name: "haskell", req: Request{Language: "haskell", Files: files("main.hs")},
			want: plan{build: []string{"ghc -v0 -outputdir .ghc-out -o a.out main.hs"}, run: "exec ./a.out"}},
		{name: "odd names are quoted", req: Request{Language: "python", Files: files("it's me.py")},
			want: plan{run: `exec python3 'it'\''s me.py'`}},
		{name: "names starting with a dash are not options", req: Request{Language: "python", Files: files("-c")},
			want: plan{run: "exec python3 ./-c"}},
		{name: "command wins over language", req: Request{Language: "python", Command: "python3 -V", Files: files("main.py")},
			want: plan{run: "python3 -V"}},
		{name: "command without language", req: Request{Command: "cat x", Files: files("x")}, want: plan{run: "cat x"}},
		{name: "command with unknown language", req: Request{Language: "cobol", Command: "cat x", Files: files("x")}, want: plan{run: "cat x"}},
		{name: "run instructions win", req: Request{Language: "python", Command: "ignored", Files: files("main.c"),
			RunInstructions: &RunInstructions{BuildCommands: []string{"cc main.c"}, RunCommand: "./a.out"}},
			want: plan{build: []string{"cc main.c"}, run: "./a.out"}},
		{name: "run instructions without build", req: Request{Files: files("x"), RunInstructions: &RunInstructions{RunCommand: "cat x"}},
			want: plan{run: "cat x"}},
		{name: "run instructions without run command", req: Request{Files: files("x"), RunInstructions: &RunInstructions{}},
			wantErr: "runInstructions has no runCommand"},
		{name: "empty build command", req: Request{Files: files("x"), RunInstructions: &RunInstructions{BuildCommands: []string{" "}, RunCommand: "x"}},
			wantErr: "runInstructions.buildCommands[0] is empty"},
		{name: "no language, no command", req: Request{Files: files("x")}, wantErr: "request has no language and no command"},
		{name: "blank command", req: Request{Command: "  ", Files: files("x")}, wantErr: "request has no language and no command"},
		{name: "unknown language", req: Request{Language: "cobol", Files: files("x")},
			wantErr: `unknown language "cobol": give a command or runInstructions`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := planFor(&tt.req)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("plan() error = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("plan() error = %v", err)
			}
			if diff := cmp.Diff(tt.want, got, cmp.AllowUnexported(plan{})); diff != "" {
				t.Errorf("plan() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}
