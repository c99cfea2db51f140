#!/usr/bin/env bash
# Installs the Debian 12 packages Porthole needs to build, test and demo,
# skipping those already present. Safe to run any number of times.
set -euo pipefail

# The one list of packages. Keep it sorted by purpose.
PACKAGES=(
	# toolchain
	build-essential clang libclang-rt-14-dev meson ninja-build pkg-config
	# libraries
	libuv1-dev libsqlite3-dev libzstd-dev libssl-dev libcmocka-dev
	libinih-dev libsystemd-dev libvirt-dev libxml2-dev libjansson-dev
	# libvirt's test driver (tests/integration/libvirt.sh) is part of libvirt0
	# test, demo and VM tooling
	xxd socat python3 procps util-linux busybox-static qemu-system-x86 zstd
	# systemd-analyze and systemd-socket-activate (tests/integration/units.sh,
	# config.sh)
	systemd
	# man pages, completions and packages (tests/integration/packages.sh)
	scdoc man-db bash-completion debhelper dpkg-dev fakeroot lintian rpm
)

say() { printf 'install-deps: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

command -v dpkg-query >/dev/null 2>&1 ||
	die "dpkg-query not found; this script supports Debian 12 only"

missing=()
for p in "${PACKAGES[@]}"; do
	status=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
	[[ $status == installed ]] || missing+=("$p")
done

if ((${#missing[@]} == 0)); then
	say "all ${#PACKAGES[@]} packages are installed"
	exit 0
fi

say "missing: ${missing[*]}"

if [[ $(id -u) -eq 0 ]]; then
	as_root=()
elif command -v sudo >/dev/null 2>&1; then
	as_root=(sudo)
	# Without a terminal sudo cannot ask for a password; fail clearly.
	if [[ ! -t 0 ]] && ! sudo -n true 2>/dev/null; then
		die "need root to install packages: run as root, or make sudo usable without a password, or install them by hand: apt-get install ${missing[*]}"
	fi
else
	die "need root to install packages and sudo is not available; run as root: apt-get install ${missing[*]}"
fi

export DEBIAN_FRONTEND=noninteractive
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q ||
	die "apt-get update failed"
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
	--no-install-recommends "${missing[@]}" ||
	die "apt-get install failed for: ${missing[*]}"

# Confirm: a package that apt silently skipped must not go unnoticed.
still=()
for p in "${missing[@]}"; do
	status=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
	[[ $status == installed ]] || still+=("$p")
done
((${#still[@]} == 0)) || die "still missing after install: ${still[*]}"
say "installed: ${missing[*]}"
