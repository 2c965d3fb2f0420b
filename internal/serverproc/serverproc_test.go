package serverproc

import (
	"context"
	"strings"
	"testing"
)

// A server that refuses its configuration exits before it listens: Start
// says so and hands back the log that says why.
func TestStartReportsEarlyExit(t *testing.T) {
	bin, err := Build(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	p, err := Start(context.Background(), bin, Options{Env: []string{"SERVER_WORKER_THREADS=zero"}})
	if err == nil {
		p.Kill()
		t.Fatal("Start succeeded with SERVER_WORKER_THREADS=zero")
	}
	for _, want := range []string{"exited before listening", "SERVER_WORKER_THREADS"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Start error %q does not contain %q", err, want)
		}
	}
}
