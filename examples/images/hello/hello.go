// Package hello gives Go programs the hello-world requests beside this file,
// one per language (<language>.json: the language, the payload for the
// image's agent and the stdout it prints). examples/images/smoke.sh runs the
// same files against the images; the playground fills its editor with them.
package hello

import (
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"strings"
)

//go:embed *.json
var files embed.FS

// Program is one language's hello world.
type Program struct {
	// Language is the language's name, as in the images' dockerrun.language
	// label.
	Language string `json:"language"`
	// Payload is the request for the image's agent: language and files.
	Payload json.RawMessage `json:"payload"`
	// Stdout is what the program prints.
	Stdout string `json:"stdout"`
}

// All returns every language's hello world, sorted by language.
func All() ([]Program, error) {
	names, err := fs.Glob(files, "*.json")
	if err != nil {
		return nil, err
	}
	progs := make([]Program, 0, len(names))
	for _, name := range names { // fs.Glob sorts
		data, err := files.ReadFile(name)
		if err != nil {
			return nil, err
		}
		var p Program
		if err := json.Unmarshal(data, &p); err != nil {
			return nil, fmt.Errorf("hello/%s: %w", name, err)
		}
		if want := strings.TrimSuffix(name, ".json"); p.Language != want {
			return nil, fmt.Errorf("hello/%s: language is %q, want %q", name, p.Language, want)
		}
		progs = append(progs, p)
	}
	return progs, nil
}
