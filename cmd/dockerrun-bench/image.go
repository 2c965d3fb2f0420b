package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/dockerrun/dockerrun/internal/protocol"
	"github.com/dockerrun/dockerrun/internal/testenv"
)

// trivialImage is the image of the "trivial" rows: a static agent FROM
// scratch that answers at once.
const trivialImage = "dockerrun-bench/probe:latest"

// benchImage is an image and the payload its rows run.
type benchImage struct {
	name    string // "trivial" or "python"
	ref     string
	runtime string // the OCI runtime its rows use
	payload json.RawMessage
	// wantStdout is what the answer's "stdout" must contain.
	wantStdout string
}

// check returns an error unless raw is the answer the image should give.
func (img *benchImage) check(raw []byte) error {
	stdout, _, errText, err := protocol.CheckAnswer(raw)
	if err != nil {
		return fmt.Errorf("%w: %.200q", err, raw)
	}
	return img.checkStdout(stdout, errText)
}

func (img *benchImage) checkStdout(stdout, errText string) error {
	if errText != "" || !strings.Contains(stdout, img.wantStdout) {
		return fmt.Errorf("answer stdout %.100q, error %.100q: want stdout with %q and no error", stdout, errText, img.wantStdout)
	}
	return nil
}

// image returns the named image, building the trivial one.
func (bn *bench) image(ctx context.Context, name string) (*benchImage, error) {
	switch name {
	case "trivial":
		if err := bn.buildTrivial(); err != nil {
			return nil, err
		}
		return &benchImage{
			name:       name,
			ref:        trivialImage,
			payload:    json.RawMessage(`{"mode":"echo","text":"hello"}`),
			wantStdout: `"text":"hello"`,
		}, nil
	case "python":
		if _, err := bn.cli.ImageInspect(ctx, bn.o.pythonImage); err != nil {
			if cerrdefs.IsNotFound(err) {
				return nil, fmt.Errorf("image %s is missing: build it with examples/images/build.sh python, or leave python out of -images", bn.o.pythonImage)
			}
			return nil, fmt.Errorf("inspect %s: %w", bn.o.pythonImage, err)
		}
		return &benchImage{
			name:       name,
			ref:        bn.o.pythonImage,
			payload:    json.RawMessage(`{"language":"python","files":[{"name":"main.py","content":"print('hello')"}],"trace":true}`),
			wantStdout: "hello\n",
		}, nil
	}
	return nil, fmt.Errorf("unknown image %q", name)
}

// buildTrivial builds the probe agent of the integration tests statically
// and puts it alone in an image FROM scratch.
func (bn *bench) buildTrivial() error {
	bn.logf("building %s", trivialImage)
	return testenv.BuildProbe(bn.cli, trivialImage)
}
