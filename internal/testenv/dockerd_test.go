package testenv

import (
	"context"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
)

// TestDockerd starts a private daemon, copies the probe image into it, runs a
// container there, and survives a restart and a kill.
func TestDockerd(t *testing.T) {
	probe := Probe(t)
	d := StartDockerd(t, DockerdOptions{})
	d.LoadImages(t, probe)
	c := d.Client(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if _, err := c.ImageInspect(ctx, probe); err != nil {
		t.Fatalf("probe image not in the private daemon: %v", err)
	}
	resp, err := c.ContainerCreate(ctx, &container.Config{Image: probe, OpenStdin: true, Labels: map[string]string{LabelTest: "dockerd"}},
		&container.HostConfig{NetworkMode: "none"}, nil, nil, "")
	if err != nil {
		t.Fatalf("create in the private daemon: %v", err)
	}
	// The probe waits for its payload on stdin, which stays open.
	if err := c.ContainerStart(ctx, resp.ID, container.StartOptions{}); err != nil {
		t.Fatalf("start in the private daemon: %v", err)
	}
	if _, err := Docker(t).ContainerInspect(ctx, resp.ID); err == nil {
		t.Fatalf("container %s of the private daemon is visible on the shared one", resp.ID)
	}

	info, err := c.ContainerInspect(ctx, resp.ID)
	if err != nil || !info.State.Running {
		t.Fatalf("container not running in the private daemon: %v %+v", err, info.State)
	}
	d.Restart(t)
	info, err = c.ContainerInspect(ctx, resp.ID)
	if err != nil {
		t.Fatalf("inspect after restart: %v", err)
	}
	if info.State.Running {
		t.Errorf("container still running after a daemon restart without live-restore")
	}

	d.Kill(t)
	if _, err := c.Ping(ctx); err == nil {
		t.Fatalf("killed daemon still answers")
	}
	d.Start(t)
	if err := c.ContainerRemove(ctx, resp.ID, container.RemoveOptions{Force: true}); err != nil {
		t.Fatalf("remove after kill and start: %v", err)
	}
}
