package main

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/dockerrun/dockerrun"
	"github.com/dockerrun/dockerrun/examples/images/hello"
	"github.com/dockerrun/dockerrun/internal/testenv"
)

// Two playgrounds on one daemon, each with the default owner, do not
// remove each other's containers: the second one's start leaves the
// first one's warm container, which then runs a hello world. With -owner,
// a playground removes what another one with that owner left.
func TestPlaygroundsShareADaemon(t *testing.T) {
	docker := testenv.Docker(t)
	testenv.LanguageImages(t, "python")
	hellos, err := hello.All()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	all, err := discover(ctx, docker, testenv.ImagePrefix(), hellos)
	if err != nil {
		t.Fatal(err)
	}
	var langs []language
	for _, l := range all {
		if l.Image == testenv.Image("python") {
			langs = append(langs, l)
		}
	}
	if len(langs) != 1 {
		t.Fatalf("discover() found %v, want python among them", names(all))
	}
	log := slog.New(slog.DiscardHandler)
	start := func(owner string) *dockerrun.Runner {
		t.Helper()
		r, err := newRunner(ctx, docker, owner, langs, log)
		if err != nil {
			t.Fatalf("newRunner(%q): %v", owner, err)
		}
		t.Cleanup(func() {
			if err := r.Close(context.Background()); err != nil {
				t.Errorf("Close: %v", err)
			}
			testenv.WaitNoContainers(t, dockerrun.LabelInstance, r.Instance(), 30*time.Second)
		})
		return r
	}
	// warm waits for r's warm container and returns its ID.
	warm := func(r *dockerrun.Runner) string {
		t.Helper()
		list, _ := testenv.WaitContainers(t, dockerrun.LabelInstance, r.Instance(), 30*time.Second, "a warm container",
			func(list []container.Summary) bool { return len(list) == 1 && list[0].State == "running" })
		return list[0].ID
	}

	first := start("")
	id := warm(first)
	second := start("")
	warm(second)
	if _, err := docker.ContainerInspect(ctx, id); err != nil {
		t.Fatalf("the first playground's warm container after the second one started: %v; want it kept", err)
	}
	res, err := first.Run(ctx, langs[0].Image, langs[0].Hello)
	if err != nil || !res.Warm {
		t.Fatalf("first playground's Run() = %+v, %v; want an answer from its warm container", res, err)
	}

	// A playground killed with -owner NAME left a warm container: the
	// next one with -owner NAME removes it at start-up.
	owner := "playground-test-" + first.Instance()[:8]
	killed := start(owner)
	left := warm(killed)
	start(owner)
	if _, err := docker.ContainerInspect(ctx, left); err == nil {
		t.Errorf("container %s of owner %s left by another playground is still there; want it removed at start-up", left[:12], owner)
	}
}
