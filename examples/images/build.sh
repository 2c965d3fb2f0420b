#!/usr/bin/env bash
# build.sh builds dockerrun's language images (dockerrun/<language>:latest)
# from Debian packages, without any container registry:
#
#   debootstrap --variant=minbase  ->  base tarball            (cached)
#   + apt-get install the language's packages in a chroot
#                                   ->  per-language tarball   (cached)
#   docker import                   ->  dockerrun/rootfs-<language>:<key>
#   docker build (Dockerfile)       ->  dockerrun/<language>:latest
#                                       (adds the static code-runner agent)
#
# Usage: build.sh [-f|--force] [all] [LANGUAGE...]      (no language: all)
#
# Languages are defined by languages/<language>.sh. `all` builds those with
# in_all=yes; others (haskell) must be named.
#
# Environment:
#   DOCKERRUN_IMAGES_CACHE     cache directory (default /var/cache/dockerrun-images)
#   DOCKERRUN_IMAGES_MIRROR    Debian mirror (default: the one in /etc/apt/sources.list*,
#                              else http://deb.debian.org/debian)
#   DOCKERRUN_IMAGES_SECURITY_MIRROR  security mirror, or "none" (default: from
#                              /etc/apt/sources.list*, else derived from the mirror)
#   DOCKERRUN_IMAGES_SUITE     Debian suite (default bookworm)
#   DOCKERRUN_IMAGES_PREFIX    image name prefix (default dockerrun)
#
# A language is rebuilt only when its definition, the base, the Dockerfile or
# the agent binary changed (the image carries the key in the label
# dockerrun.image.key); --force rebuilds the images (not the cached tarballs;
# delete the cache directory for that).
set -euo pipefail

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo_root=$(cd "$script_dir/../.." && pwd)
cache_dir=${DOCKERRUN_IMAGES_CACHE:-/var/cache/dockerrun-images}
suite=${DOCKERRUN_IMAGES_SUITE:-bookworm}
prefix=${DOCKERRUN_IMAGES_PREFIX:-dockerrun}
# Bump to invalidate every cached tarball when the way they are made changes.
recipe_version=2

log() { printf '==> %s\n' "$*" >&2; }
die() { printf 'build.sh: error: %s\n' "$*" >&2; exit 1; }

usage() {
	sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '/^set -euo/d' -e 's/^# \{0,1\}//'
}

# sources_uris prints the URIs of the machine's Debian sources, one a line.
sources_uris() {
	local f
	for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
		[[ -r $f ]] || continue
		sed -n -e 's/^[[:space:]]*URIs:[[:space:]]*//p' \
			-e 's/^[[:space:]]*deb[[:space:]]\+\(\[[^]]*\][[:space:]]\+\)\{0,1\}\([^[:space:]]\+\).*/\2/p' "$f" |
			tr ' ' '\n'
	done
}

detect_mirror() {
	local uri
	uri=$(sources_uris | grep -E '^https?://[^ ]+/debian/?$' | head -n1 || true)
	printf '%s\n' "${uri:-http://deb.debian.org/debian}"
}

detect_security_mirror() {
	local uri
	uri=$(sources_uris | grep -E '^https?://[^ ]+/debian-security/?$' | head -n1 || true)
	printf '%s\n' "${uri:-${mirror%/}-security}"
}

sha() { sha256sum | cut -c1-16; }

elapsed() { printf '%ds' $((SECONDS - $1)); }

force=no
langs=()
while (($#)); do
	case $1 in
	-f | --force) force=yes ;;
	-h | --help) usage; exit 0 ;;
	-*) die "unknown option $1 (see --help)" ;;
	*) langs+=("$1") ;;
	esac
	shift
done

all_langs() {
	local f in_all
	for f in "$script_dir"/languages/*.sh; do
		# shellcheck disable=SC1090
		in_all=$(in_all=no; source "$f"; echo "$in_all")
		[[ $in_all == yes ]] && basename "$f" .sh
	done
	return 0
}

# No language means all; `all` may also stand among names (all haskell).
((${#langs[@]})) || langs=(all)
requested=("${langs[@]}")
langs=()
for lang in "${requested[@]}"; do
	if [[ $lang == all ]]; then
		mapfile -t -O "${#langs[@]}" langs < <(all_langs)
	elif [[ " ${langs[*]} " != *" $lang "* ]]; then
		langs+=("$lang")
	fi
done
for lang in "${langs[@]}"; do
	[[ $lang =~ ^[a-z0-9][a-z0-9_-]*$ && -f $script_dir/languages/$lang.sh ]] ||
		die "unknown language '$lang': no $script_dir/languages/$lang.sh"
done

[[ $(id -u) == 0 ]] || die "must run as root (debootstrap and chroot need it)"
for tool in docker go sha256sum tar chroot mount flock; do
	command -v "$tool" >/dev/null || die "$tool is not installed"
done
if ! command -v debootstrap >/dev/null; then
	log "installing debootstrap"
	apt-get update -qq || die "apt-get update failed"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null ||
		die "cannot install debootstrap"
fi
docker info >/dev/null 2>&1 || die "cannot reach the Docker daemon (is dockerd running?)"
# Without the buildx plugin, `docker build` needs the classic builder.
if ! docker buildx version >/dev/null 2>&1; then
	export DOCKER_BUILDKIT=0
fi

mirror=${DOCKERRUN_IMAGES_MIRROR:-$(detect_mirror)}
mirror=${mirror%/}
security_mirror=${DOCKERRUN_IMAGES_SECURITY_MIRROR:-$(detect_security_mirror)}
security_mirror=${security_mirror%/}

mkdir -p "$cache_dir"
exec 9>"$cache_dir/.lock"
flock -w 3600 9 || die "another build.sh holds $cache_dir/.lock"

# Temporary directories and mounts, undone on any exit.
tmp_dirs=()
mounts=()
cleanup() {
	local m d i
	for ((i = ${#mounts[@]} - 1; i >= 0; i--)); do
		m=${mounts[i]}
		mountpoint -q "$m" && { umount "$m" 2>/dev/null || umount -l "$m" || true; }
	done
	for d in "${tmp_dirs[@]}"; do
		# Never delete through a mount that is still there.
		if grep -qF " $d/" /proc/mounts; then
			printf 'build.sh: warning: %s still has mounts, left in place\n' "$d" >&2
			continue
		fi
		rm -rf --one-file-system "$d"
	done
}
trap cleanup EXIT
trap 'printf "%s: interrupted\\n" "${0##*/}" >&2; exit 130' INT TERM

# new_tmp makes a temporary directory, removed on exit, and sets tmp to it.
# (Not a command substitution: the subshell would lose tmp_dirs.)
new_tmp() {
	tmp=$(mktemp -d "$cache_dir/tmp.XXXXXX")
	tmp_dirs+=("$tmp")
}

# in_chroot ROOT CMD... runs CMD in ROOT with /proc mounted and the host's DNS.
in_chroot() {
	local root=$1
	shift
	if ! mountpoint -q "$root/proc"; then
		mount -t proc proc "$root/proc"
		mounts+=("$root/proc")
	fi
	cp -L /etc/resolv.conf "$root/etc/resolv.conf"
	# The tarballs carry no device nodes; make the few that apt and
	# maintainer scripts use.
	local dev name major minor
	for dev in null:1:3 zero:1:5 full:1:7 random:1:8 urandom:1:9 tty:5:0; do
		IFS=: read -r name major minor <<<"$dev"
		[[ -e $root/dev/$name ]] || mknod -m 0666 "$root/dev/$name" c "$major" "$minor"
	done
	chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin \
		DEBIAN_FRONTEND=noninteractive LC_ALL=C.UTF-8 HOME=/root "$@"
}

# leave_chroot ROOT unmounts /proc and removes what in_chroot and apt left.
leave_chroot() {
	local root=$1
	if mountpoint -q "$root/proc"; then
		umount "$root/proc"
	fi
	: >"$root/etc/resolv.conf"
	find "$root/dev" -mindepth 1 -maxdepth 1 -type c -delete
	rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin \
		"$root"/var/cache/apt/archives/*.deb "$root"/var/log/apt/* "$root"/tmp/* \
		"$root"/var/cache/debconf/*-old "$root"/var/lib/dpkg/*-old
}

# pack ROOT TAR writes ROOT as a tarball, atomically.
pack() {
	tar --numeric-owner --xattrs -C "$1" -cf "$2.partial" \
		--exclude='./proc/*' --exclude='./sys/*' --exclude='./dev/*' .
	mv "$2.partial" "$2"
}

sources_list() {
	printf 'deb %s %s main\n' "$mirror" "$suite"
	printf 'deb %s %s-updates main\n' "$mirror" "$suite"
	if [[ $security_mirror != none ]]; then
		printf 'deb %s %s-security main\n' "$security_mirror" "$suite"
	fi
}

base_key=$( {
	echo "recipe $recipe_version"
	echo "suite $suite"
	sources_list
} | sha)
base_tar=$cache_dir/base-$suite-$base_key.tar

# build_base makes the minbase tarball: Debian minbase, apt set up for small
# installs (no recommends, no docs), and the user glot (uid 1000).
build_base() {
	local t0=$SECONDS tmp root
	log "base: debootstrap --variant=minbase $suite from $mirror"
	new_tmp
	root=$tmp/root
	debootstrap --variant=minbase --components=main "$suite" "$root" "$mirror" >"$tmp/debootstrap.log" 2>&1 || {
		tail -n 30 "$tmp/debootstrap.log" >&2
		[[ -f $root/debootstrap/debootstrap.log ]] && tail -n 30 "$root/debootstrap/debootstrap.log" >&2
		die "debootstrap failed"
	}
	sources_list >"$root/etc/apt/sources.list"
	cat >"$root/etc/apt/apt.conf.d/90dockerrun" <<-'EOF'
		APT::Install-Recommends "false";
		APT::Install-Suggests "false";
		Acquire::Languages "none";
		Dpkg::Use-Pty "false";
	EOF
	cat >"$root/etc/dpkg/dpkg.cfg.d/90dockerrun-nodoc" <<-'EOF'
		path-exclude=/usr/share/doc/*
		path-include=/usr/share/doc/*/copyright
		path-exclude=/usr/share/man/*
		path-exclude=/usr/share/info/*
		path-exclude=/usr/share/locale/*
		path-include=/usr/share/locale/locale.alias
		path-exclude=/usr/share/lintian/*
	EOF
	# Never start services inside the chroot.
	printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
	chmod 0755 "$root/usr/sbin/policy-rc.d"
	find "$root/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete 2>/dev/null || true
	find "$root/usr/share/doc" -mindepth 1 -type d -empty -delete 2>/dev/null || true
	rm -rf "$root"/usr/share/man/* "$root"/usr/share/info/* "$root"/usr/share/locale/*
	# update-alternatives fails on a missing man directory (the JDK's does).
	mkdir -p "$root"/usr/share/man/man{1..8}
	in_chroot "$root" groupadd --gid 1000 glot
	in_chroot "$root" useradd --uid 1000 --gid 1000 --create-home --home-dir /home/glot --shell /bin/bash glot
	rm -rf "$root/debootstrap"
	leave_chroot "$root"
	pack "$root" "$base_tar"
	log "base: done in $(elapsed "$t0") ($(du -h "$base_tar" | cut -f1))"
}

# load_lang LANG sets packages, env, setup and in_all from languages/LANG.sh.
load_lang() {
	packages="" env="" setup="" in_all=no
	# shellcheck disable=SC1090
	source "$script_dir/languages/$1.sh"
}

# build_rootfs LANG TAR installs the language's packages on a copy of the base.
build_rootfs() {
	local lang=$1 tar=$2 t0=$SECONDS tmp root
	new_tmp
	root=$tmp/root
	mkdir "$root"
	tar --numeric-owner --xattrs -C "$root" -xf "$base_tar"
	if [[ -n $packages || -n $setup ]]; then
		log "$lang: apt-get install ${packages:-(nothing)}"
		in_chroot "$root" apt-get update -qq >"$tmp/apt.log" 2>&1 || {
			cat "$tmp/apt.log" >&2
			die "$lang: apt-get update failed"
		}
		# shellcheck disable=SC2086
		in_chroot "$root" apt-get install -y -q $packages >"$tmp/apt.log" 2>&1 || {
			tail -n 40 "$tmp/apt.log" >&2
			die "$lang: apt-get install $packages failed"
		}
		if [[ -n $setup ]]; then
			in_chroot "$root" /bin/sh -euc "$setup" || die "$lang: setup commands failed"
		fi
		in_chroot "$root" apt-get clean
	fi
	leave_chroot "$root"
	pack "$root" "$tar"
	log "$lang: root file system done in $(elapsed "$t0") ($(du -h "$tar" | cut -f1))"
}

# Build the agent: a static binary, reproducible so that its hash only
# changes with its source.
t0=$SECONDS
new_tmp
ctx=$tmp
log "agent: CGO_ENABLED=0 go build ./cmd/code-runner"
(cd "$repo_root" && CGO_ENABLED=0 go build -trimpath -ldflags='-s -w -buildid=' -o "$ctx/code-runner" ./cmd/code-runner) ||
	die "cannot build the agent"
chmod 0755 "$ctx/code-runner"
cp "$script_dir/Dockerfile" "$ctx/Dockerfile"
agent_sha=$(sha <"$ctx/code-runner")
log "agent: done in $(elapsed "$t0") (sha256 $agent_sha...)"

built=()
for lang in "${langs[@]}"; do
	t_lang=$SECONDS
	load_lang "$lang"
	lang_key=$( {
		echo "base $base_key"
		cat "$script_dir/languages/$lang.sh"
	} | sha)
	image_key=$( {
		echo "rootfs $lang_key"
		echo "agent $agent_sha"
		cat "$script_dir/Dockerfile"
	} | sha)
	image=$prefix/$lang:latest
	rootfs_image=$prefix/rootfs-$lang:$lang_key

	current=$(docker image inspect -f '{{index .Config.Labels "dockerrun.image.key"}}' "$image" 2>/dev/null || true)
	if [[ $force == no && $current == "$image_key" ]]; then
		log "$lang: $image is up to date"
		built+=("$lang")
		continue
	fi

	if ! docker image inspect "$rootfs_image" >/dev/null 2>&1; then
		rootfs_tar=$cache_dir/rootfs-$lang-$lang_key.tar
		if [[ ! -f $rootfs_tar ]]; then
			[[ -f $base_tar ]] || build_base
			build_rootfs "$lang" "$rootfs_tar"
		fi
		t0=$SECONDS
		changes=(--change 'LABEL dockerrun.image=1' --change "LABEL dockerrun.language=$lang"
			--change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin')
		for kv in $env; do
			changes+=(--change "ENV $kv")
		done
		docker import "${changes[@]}" "$rootfs_tar" "$rootfs_image" >/dev/null ||
			die "$lang: docker import failed"
		log "$lang: imported $rootfs_image in $(elapsed "$t0")"
	fi

	t0=$SECONDS
	docker build -q --build-arg "ROOTFS=$rootfs_image" \
		--label dockerrun.image=1 --label "dockerrun.language=$lang" \
		--label "dockerrun.image.key=$image_key" \
		-t "$image" "$ctx" >"$ctx/build.log" 2>&1 || {
		cat "$ctx/build.log" >&2
		die "$lang: docker build failed"
	}
	log "$lang: built $image in $(elapsed "$t0") ($(elapsed "$t_lang") in all)"
	built+=("$lang")

	# Drop what older definitions of this language left: tarballs and
	# imported root file systems with another key (all made by this script).
	find "$cache_dir" -maxdepth 1 -name "rootfs-$lang-*.tar" ! -name "rootfs-$lang-$lang_key.tar" -delete
	docker image ls --filter label=dockerrun.image=1 --format '{{.Repository}}:{{.Tag}}' "$prefix/rootfs-$lang" |
		grep -vxF "$rootfs_image" | xargs -r docker image rm >/dev/null 2>&1 || true
done
find "$cache_dir" -maxdepth 1 -name "base-*.tar" ! -name "base-$suite-$base_key.tar" -delete

log "built: ${built[*]} in $SECONDS s"
