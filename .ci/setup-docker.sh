#!/usr/bin/env bash
# Installs what the tests need (Docker engine, gVisor's runsc, debootstrap,
# busybox-static), registers runsc with dockerd and starts dockerd when it is
# not running. Idempotent: safe to run on a machine that already has all of it.
set -euo pipefail

log() { printf '[setup-docker] %s\n' "$*" >&2; }

need=()
command -v dockerd >/dev/null 2>&1 || need+=(docker.io)
command -v runsc >/dev/null 2>&1 || need+=(runsc)
command -v debootstrap >/dev/null 2>&1 || need+=(debootstrap)
[ -x /bin/busybox ] || need+=(busybox-static)
command -v python3 >/dev/null 2>&1 || need+=(python3)
if [ ${#need[@]} -gt 0 ]; then
	log "installing: ${need[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# Register gVisor. On these machines runsc must be told --network=none or it
# refuses to start containers.
want='{
  "runtimes": {
    "runsc": {"path": "'"$(command -v runsc)"'", "runtimeArgs": ["--network=none"]}
  }
}'
mkdir -p /etc/docker
if [ ! -f /etc/docker/daemon.json ] || ! grep -q '"runsc"' /etc/docker/daemon.json; then
	log "writing /etc/docker/daemon.json (runsc runtime)"
	printf '%s\n' "$want" >/etc/docker/daemon.json
	if docker info >/dev/null 2>&1 && [ -f /var/run/docker.pid ]; then
		log "reloading dockerd configuration"
		kill -HUP "$(cat /var/run/docker.pid)" || true
		sleep 2
	fi
fi

if ! docker info >/dev/null 2>&1; then
	log "starting dockerd (log: /var/log/dockerd.log)"
	nohup dockerd >/var/log/dockerd.log 2>&1 &
	echo $! >/var/run/dockerrun-dockerd.pid
fi

for i in $(seq 1 60); do
	if docker info >/dev/null 2>&1; then
		log "dockerd is up (runtimes: $(docker info --format '{{range $k, $v := .Runtimes}}{{$k}} {{end}}'))"
		exit 0
	fi
	sleep 1
done
log "dockerd did not answer within 60s; last lines of /var/log/dockerd.log:"
tail -n 30 /var/log/dockerd.log >&2 || true
exit 1
