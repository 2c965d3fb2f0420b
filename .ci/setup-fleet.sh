#!/usr/bin/env bash
# Installs what the tests of deploy/ need: HAProxy from Debian, the load
# balancer the fleet test puts in front of two servers; systemd-analyze,
# which checks the systemd unit; promtool (package prometheus), which checks
# the alerting rules; docker-compose, which runs deploy/compose.yaml. Only the binaries are used: the fleet test starts its
# own haproxy in the foreground with its own configuration, and the packaged
# services are stopped and disabled so that they never listen. Idempotent.
set -euo pipefail

log() { printf '[setup-fleet] %s\n' "$*" >&2; }

need=()
command -v haproxy >/dev/null 2>&1 || need+=(haproxy)
command -v systemd-analyze >/dev/null 2>&1 || need+=(systemd)
command -v promtool >/dev/null 2>&1 || need+=(prometheus)
command -v docker-compose >/dev/null 2>&1 || need+=(docker-compose)
if [ ${#need[@]} -gt 0 ]; then
	log "installing: ${need[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
# The packages start services on Debian where systemd runs; these are not
# needed.
for svc in haproxy prometheus; do
	if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet "$svc" 2>/dev/null; then
		systemctl disable --now "$svc" >/dev/null 2>&1 || true
	fi
done
log "$(haproxy -v | head -n 1)"
