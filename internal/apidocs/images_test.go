package apidocs

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dockerrun/dockerrun/internal/testenv"
	"github.com/google/go-cmp/cmp"
)

// hello is one examples/images/hello/<language>.json file.
type hello struct {
	Language string          `json:"language"`
	Payload  json.RawMessage `json:"payload"`
	Stdout   string          `json:"stdout"`
}

// TestLanguageHello runs the hello-world of every language image that
// examples/images/build.sh has built on this daemon through the server.
// python, bash and c are always built (by the test itself if need be); the
// others run when present, as after `build.sh all`.
func TestLanguageHello(t *testing.T) {
	files, err := filepath.Glob("../../examples/images/hello/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no hello-world files in examples/images/hello: %v", err)
	}
	testenv.LanguageImages(t, "python", "bash", "c")
	cli := testenv.Docker(t)
	s := testenv.StartServer(t, "RUN_MAX_EXECUTION_TIME=30", "SERVER_WORKER_THREADS=3", "DOCKER_CONTAINER_MEMORY=1073741824")
	ran := 0
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var h hello
		if err := json.Unmarshal(data, &h); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		image := testenv.Image(h.Language)
		if _, err := cli.ImageInspect(context.Background(), image); err != nil {
			t.Logf("%s: not built on this daemon, not run (examples/images/build.sh %s builds it)", image, h.Language)
			continue
		}
		ran++
		t.Run(h.Language, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			status, body, err := s.Run(ctx, image, h.Payload)
			if err != nil || status != 200 {
				t.Fatalf("POST /run %s = %d %s, %v; want 200", image, status, body, err)
			}
			var got struct{ Stdout, Stderr, Error string }
			if err := json.Unmarshal(body, &got); err != nil {
				t.Fatalf("answer is not JSON: %v", err)
			}
			want := struct{ Stdout, Stderr, Error string }{Stdout: h.Stdout}
			if strings.TrimSpace(got.Error) != "" || got.Stdout != h.Stdout {
				t.Errorf("hello world in %s mismatch (-want +got):\n%s", image, cmp.Diff(want, got))
			}
		})
	}
	if ran < 3 {
		t.Errorf("ran %d language images, want at least python, bash and c", ran)
	}
}
