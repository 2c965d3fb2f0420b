#!/usr/bin/env bash
# Installs Chromium (Debian's chromium package) for the playground's browser
# test (examples/playground/browser_test.go), which drives it headless with
# chromedp. Idempotent: does nothing when a chromium is on PATH.
set -euo pipefail

log() { printf '[setup-browser] %s\n' "$*" >&2; }

for name in chromium chromium-browser google-chrome; do
	if command -v "$name" >/dev/null 2>&1; then
		exit 0
	fi
done
log "installing: chromium"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends chromium >/dev/null
command -v chromium >/dev/null
