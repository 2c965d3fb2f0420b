package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestCheckName(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		file    string
		wantErr string
	}{
		{name: "plain", file: "main.py"},
		{name: "nested", file: "src/pkg/util.go"},
		{name: "dot file", file: ".env"},
		{name: "dots inside a name", file: "a..b/..c"},
		{name: "spaces and quotes", file: `it's "x".txt`},
		{name: "empty", file: "", wantErr: "empty file name"},
		{name: "absolute", file: "/etc/passwd", wantErr: `file name "/etc/passwd" is absolute: names must be relative to the work directory`},
		{name: "parent", file: "../x", wantErr: `file name "../x" has a ".." component`},
		{name: "parent inside", file: "a/../../x", wantErr: `file name "a/../../x" has a ".." component`},
		{name: "parent at end", file: "a/..", wantErr: `file name "a/.." has a ".." component`},
		{name: "dot", file: "./x", wantErr: `file name "./x" has a "." component`},
		{name: "NUL", file: "a\x00b", wantErr: `file name "a\x00b" contains a NUL byte`},
		{name: "double slash", file: "a//b", wantErr: `file name "a//b" has an empty path component`},
		{name: "trailing slash", file: "a/", wantErr: `file name "a/" has an empty path component`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := checkName(tt.file)
			got := ""
			if err != nil {
				got = err.Error()
			}
			if got != tt.wantErr {
				t.Errorf("checkName(%q) = %q, want %q", tt.file, got, tt.wantErr)
			}
		})
	}
}

func TestWriteFiles(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		// setup prepares the work directory; outside is a directory that
		// must stay empty.
		setup   func(t *testing.T, dir, outside string)
		files   []File
		want    map[string]string // files expected inside dir
		wantErr string
	}{
		{
			name:  "nested directories are created",
			files: []File{{Name: "main.py", Content: "print(1)"}, {Name: "a/b/c.txt", Content: "deep"}, {Name: "a/d.txt", Content: ""}},
			want:  map[string]string{"main.py": "print(1)", "a/b/c.txt": "deep", "a/d.txt": ""},
		},
		{
			name:  "existing directory is reused",
			setup: func(t *testing.T, dir, _ string) { mkdir(t, filepath.Join(dir, "src")) },
			files: []File{{Name: "src/x", Content: "x"}},
			want:  map[string]string{"src/x": "x"},
		},
		{
			name: "symlinked directory is refused",
			setup: func(t *testing.T, dir, outside string) {
				symlink(t, outside, filepath.Join(dir, "link"))
			},
			files:   []File{{Name: "link/x", Content: "escaped"}},
			wantErr: `write file "link/x": "link" is a symbolic link or not a directory`,
		},
		{
			name: "symlinked file is not followed",
			setup: func(t *testing.T, dir, outside string) {
				symlink(t, filepath.Join(outside, "target"), filepath.Join(dir, "main.py"))
			},
			files:   []File{{Name: "main.py", Content: "escaped"}},
			wantErr: `write file "main.py": a file, directory or symbolic link of that name already exists`,
		},
		{
			name: "symlink deeper down is refused",
			setup: func(t *testing.T, dir, outside string) {
				mkdir(t, filepath.Join(dir, "a"))
				symlink(t, outside, filepath.Join(dir, "a", "b"))
			},
			files:   []File{{Name: "a/b/c", Content: "escaped"}},
			wantErr: `write file "a/b/c": "b" is a symbolic link or not a directory`,
		},
		{
			name:    "file in the way of a directory",
			files:   []File{{Name: "a", Content: "file"}, {Name: "a/b", Content: "x"}},
			wantErr: `write file "a/b": "a" is a symbolic link or not a directory`,
		},
		{
			name:    "unsafe name is refused even if parsing was skipped",
			files:   []File{{Name: "../x", Content: "escaped"}},
			wantErr: `file name "../x" has a ".." component`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			base := t.TempDir()
			dir, outside := filepath.Join(base, "work"), filepath.Join(base, "outside")
			mkdir(t, dir)
			mkdir(t, outside)
			if tt.setup != nil {
				tt.setup(t, dir, outside)
			}
			err := writeFiles(dir, tt.files)
			gotErr := ""
			if err != nil {
				gotErr = err.Error()
			}
			if gotErr != tt.wantErr {
				t.Fatalf("writeFiles() error = %q, want %q", gotErr, tt.wantErr)
			}
			if entries, _ := os.ReadDir(outside); len(entries) != 0 {
				t.Errorf("writeFiles() wrote %d entries outside the work directory", len(entries))
			}
			if tt.want == nil {
				return
			}
			got := map[string]string{}
			filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
				if err != nil || d.IsDir() {
					return err
				}
				b, err := os.ReadFile(path)
				if err != nil {
					return err
				}
				rel, _ := filepath.Rel(dir, path)
				got[filepath.ToSlash(rel)] = string(b)
				return nil
			})
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("writeFiles() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func mkdir(t *testing.T, dir string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
}

func symlink(t *testing.T, target, link string) {
	t.Helper()
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
}

// TestWriteFilesMode checks that written files are plain, readable files.
func TestWriteFilesMode(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := writeFiles(dir, []File{{Name: "x/y", Content: strings.Repeat("a", 100000)}}); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Lstat(filepath.Join(dir, "x", "y"))
	if err != nil {
		t.Fatal(err)
	}
	if !fi.Mode().IsRegular() || fi.Size() != 100000 {
		t.Errorf("written file: mode %v, size %d; want a regular file of 100000 bytes", fi.Mode(), fi.Size())
	}
}
