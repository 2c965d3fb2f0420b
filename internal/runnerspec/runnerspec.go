// Package runnerspec gives the benchmark the configuration of the containers
// a dockerrun.Runner creates, so that its plain Engine API method creates the
// very same containers, without making that configuration public API.
package runnerspec

import (
	"context"

	"github.com/docker/docker/api/types/container"
)

// Cold returns the configuration of the cold containers that runner (a
// *dockerrun.Runner) creates from image, as copies the caller may change.
// Like a run, it inspects the image. Package dockerrun sets it when it is
// initialized; nothing else may.
var Cold func(ctx context.Context, runner any, image string) (*container.Config, *container.HostConfig, error)
