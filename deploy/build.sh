#!/usr/bin/env bash
# Builds the server image offline: a static cmd/docker-run, then
# deploy/Dockerfile (FROM scratch). Usage, from anywhere in the checkout:
#
#   deploy/build.sh [TAG]      # default tag: dockerrun/server:latest
set -euo pipefail
cd "$(dirname "$0")/.."
tag=${1:-dockerrun/server:latest}
CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o deploy/docker-run ./cmd/docker-run
# Without the buildx plugin, `docker build` needs the classic builder.
if ! docker buildx version >/dev/null 2>&1; then
	export DOCKER_BUILDKIT=0
fi
docker build -q -f deploy/Dockerfile -t "$tag" . >/dev/null
echo "$tag: $(docker image inspect --format '{{.Size}}' "$tag") bytes"
