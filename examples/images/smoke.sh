#!/usr/bin/env bash
# smoke.sh runs each language's hello-world request (hello/<language>.json)
# through its image, dockerrun/<language>:latest, the way the server does: the
# request on the container's stdin, one JSON result on its stdout. Each image
# runs twice: with the hardened settings below and with plain `docker run`.
#
# Usage: smoke.sh [LANGUAGE...]
#   No language: every language with a hello/<language>.json whose image
#   exists. A named language whose image is missing is a failure.
#
# Environment:
#   DOCKERRUN_IMAGES_PREFIX  image name prefix (default dockerrun)
#   SMOKE_TIMEOUT            seconds allowed per run (default 300)
#
# It checks that the result is one JSON object with exactly the fields
# stdout, stderr, error and duration; that stdout is the expected one; that
# error is empty; and that the container wrote nothing to stderr (which the
# server takes for an agent failure). It needs docker and python3.
set -euo pipefail

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
prefix=${DOCKERRUN_IMAGES_PREFIX:-dockerrun}
timeout_s=${SMOKE_TIMEOUT:-300}

# shellcheck disable=SC2054 # commas belong to the --tmpfs options
hardened=(
	--read-only
	--tmpfs /home/glot:rw,exec,nosuid,size=64m,uid=1000,gid=1000
	--tmpfs /tmp:rw,noexec,nosuid,size=64m
	--user glot --network none --cap-drop ALL --security-opt no-new-privileges
	# The agent's own limits, generous enough for a cold compiler.
	-e DOCKERRUN_MAX_EXECUTION_TIME_MS=$((timeout_s * 1000 - 10000))
	-e DOCKERRUN_MAX_OUTPUT_SIZE=1048576
)

die() { printf 'smoke.sh: error: %s\n' "$*" >&2; exit 1; }
command -v docker >/dev/null || die "docker is not installed"
command -v python3 >/dev/null || die "python3 is not installed"
docker info >/dev/null 2>&1 || die "cannot reach the Docker daemon"

explicit=yes
langs=("$@")
if ((${#langs[@]} == 0)); then
	explicit=no
	for f in "$script_dir"/hello/*.json; do
		langs+=("$(basename "$f" .json)")
	done
fi

tmp=$(mktemp -d)
containers=()
cleanup() {
	local c
	for c in "${containers[@]}"; do
		docker rm -f "$c" >/dev/null 2>&1 || true
	done
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'printf "%s: interrupted\\n" "${0##*/}" >&2; exit 130' INT TERM

check_result() {
	python3 - "$1" "$2" <<-'EOF'
		import json, sys
		want = json.load(open(sys.argv[1]))
		raw = open(sys.argv[2], encoding="utf-8").read()
		try:
		    res, end = json.JSONDecoder().raw_decode(raw)
		except ValueError as e:
		    sys.exit(f"stdout is not JSON ({e}): {raw[:300]!r}")
		problems = []
		if raw[end:].strip():
		    problems.append(f"more than one JSON value on stdout: {raw[end:][:100]!r}")
		if not isinstance(res, dict) or set(res) != {"stdout", "stderr", "error", "duration", "usage"}:
		    sys.exit(f"unexpected result: {raw[:300]!r}")
		usage = res["usage"]
		if not isinstance(usage, dict) or set(usage) != {"cpu_time", "memory"} or not all(isinstance(v, int) and v >= 0 for v in usage.values()) or usage["memory"] <= 0:
		    problems.append(f"usage {usage!r} is not {{cpu_time, memory}} of non-negative integers with some memory")
		if res["stdout"] != want["stdout"]:
		    problems.append(f"stdout {res['stdout']!r}, want {want['stdout']!r}")
		if res["error"]:
		    problems.append(f"error {res['error'][:500]!r}")
		if not isinstance(res["duration"], int) or res["duration"] < 0:
		    problems.append(f"duration {res['duration']!r} is not a non-negative integer")
		if res["stderr"]:
		    print(f"  (program stderr: {res['stderr'][:200]!r})")
		if problems:
		    sys.exit("; ".join(problems))
	EOF
}

failures=()
for lang in "${langs[@]}"; do
	hello=$script_dir/hello/$lang.json
	image=$prefix/$lang:latest
	[[ -f $hello ]] || die "no hello-world request for '$lang' ($hello)"
	if ! docker image inspect "$image" >/dev/null 2>&1; then
		if [[ $explicit == yes ]]; then
			printf 'FAIL %-11s image %s not found (build it with build.sh %s)\n' "$lang" "$image" "$lang"
			failures+=("$lang")
		fi
		continue
	fi
	python3 -c 'import json, sys; json.dump(json.load(open(sys.argv[1]))["payload"], sys.stdout)' "$hello" >"$tmp/payload.json"
	for mode in hardened plain; do
		flags=()
		[[ $mode == hardened ]] && flags=("${hardened[@]}")
		name=dockerrun-smoke-$lang-$mode-$$
		containers+=("$name")
		start=$(date +%s%N)
		status=0
		timeout -k 10 "$timeout_s" docker run --rm -i --name "$name" --label dockerrun.smoke=1 "${flags[@]}" "$image" \
			<"$tmp/payload.json" >"$tmp/out" 2>"$tmp/err" || status=$?
		secs=$(awk -v ns=$(($(date +%s%N) - start)) 'BEGIN { printf "%.2fs", ns / 1e9 }')
		docker rm -f "$name" >/dev/null 2>&1 || true
		problem=""
		if ((status != 0)); then
			problem="docker run exited $status: $(head -c 500 "$tmp/err")"
		elif [[ -s $tmp/err ]]; then
			problem="container stderr: $(head -c 500 "$tmp/err")"
		elif ! problem=$(check_result "$hello" "$tmp/out" 2>&1); then
			:
		else
			[[ -n $problem ]] && printf '%s\n' "$problem"
			problem=""
		fi
		if [[ -n $problem ]]; then
			printf 'FAIL %-11s %-8s %7s  %s\n' "$lang" "$mode" "$secs" "$problem"
			failures+=("$lang/$mode")
		else
			printf 'ok   %-11s %-8s %7s\n' "$lang" "$mode" "$secs"
		fi
	done
done

if ((${#failures[@]})); then
	printf 'smoke.sh: %d failed: %s\n' "${#failures[@]}" "${failures[*]}" >&2
	exit 1
fi
