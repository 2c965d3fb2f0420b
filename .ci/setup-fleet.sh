#!/usr/bin/env bash
# Installs what the tests of deploy/ need: HAProxy from Debian, the load
# balancer the fleet test puts in front of two servers, and systemd-analyze,
# which checks the systemd unit. Only haproxy's binary is used: the test starts its own haproxy in the foreground with its own
# configuration; the packaged service is stopped and disabled so that it
# never listens. Idempotent.
set -euo pipefail

log() { printf '[setup-fleet] %s\n' "$*" >&2; }

need=()
command -v haproxy >/dev/null 2>&1 || need+=(haproxy)
command -v systemd-analyze >/dev/null 2>&1 || need+=(systemd)
if [ ${#need[@]} -gt 0 ]; then
	log "installing: ${need[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
# The package starts a service on Debian where systemd runs; this one is
# not needed.
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet haproxy 2>/dev/null; then
	systemctl disable --now haproxy >/dev/null 2>&1 || true
fi
log "$(haproxy -v | head -n 1)"
