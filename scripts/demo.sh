#!/usr/bin/env bash
# A short tour of Porthole on this machine: a demo repository, portholed on
# a unix socket in a temp dir (never vsock), the guest CLI pulling a 200 MiB
# file with its progress bar and checksum, portholectl, and a clean stop.
#
# Usage: scripts/demo.sh            (after `make build`; `make demo` does both)
# Environment: BUILD_DIR (default build/release), or PORTHOLED, PORTHOLE and
# PORTHOLECTL to point at the programs directly. KEEP=1 keeps the temp dir.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-build/release}
[[ $build == /* ]] || build=$here/$build
PORTHOLED=${PORTHOLED:-$build/hostd/portholed}
PORTHOLE=${PORTHOLE:-$build/guest-agent/porthole}
PORTHOLECTL=${PORTHOLECTL:-$build/repo-tools/portholectl}

if [[ -t 1 ]]; then
	bold=$'\e[1m' green=$'\e[32m' red=$'\e[31m' off=$'\e[0m'
else
	bold='' green='' red='' off=''
fi
n=0
heading() {
	n=$((n + 1))
	printf '\n%s== %d. %s%s\n' "$bold" "$n" "$*" "$off"
}
die() {
	printf '%sdemo: FAILED: %s%s\n' "$red" "$*" "$off" >&2
	exit 1
}
# Shows a command as a user would type it, then runs it.
show() {
	local shown=$1
	case $1 in
	ph) shown=porthole ;;
	phctl) shown="portholectl -s $ctl" ;;
	esac
	printf '$ %s %s\n' "$shown" "${*:2}"
	"$@"
}

for p in "$PORTHOLED" "$PORTHOLE" "$PORTHOLECTL"; do
	[[ -x $p ]] || die "$p is not built; run 'make build' (or 'make demo')"
done

D=$(mktemp -d "${TMPDIR:-/tmp}/porthole-demo.XXXXXX")
daemon=
cleanup() {
	local rc=$?
	if [[ -n $daemon ]] && kill -0 "$daemon" 2>/dev/null; then
		kill -KILL "$daemon" 2>/dev/null || true
		wait "$daemon" 2>/dev/null || true
	fi
	if [[ -n ${KEEP:-} ]]; then
		echo "demo: kept $D"
	else
		rm -rf "$D"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

sock=$D/porthole.sock
ctl=$D/portholed.ctl
repo=$D/repo
# The guest CLI finds the daemon through $PORTHOLE_ENDPOINT (its default
# would be vsock, which the demo never uses).
export PORTHOLE_ENDPOINT=unix:$sock
ph() { "$PORTHOLE" "$@"; }
phctl() { "$PORTHOLECTL" -s "$ctl" "$@"; }

heading "Create a demo repository in $D"
mkdir -p "$repo/docs" "$repo/tools" "$repo/drivers/net" "$D/state" "$D/cache" "$D/guest"
cat >"$repo/README.txt" <<'EOF'
This directory is served by portholed. Guests pull files from it with
`porthole get`, verified by SHA-256.
EOF
printf '# Guide\n\nInstall the tools with `porthole get /tools/toolkit.bin`.\n' \
    >"$repo/docs/guide.md"
printf 'fake driver %s\n' {1..2000} >"$repo/drivers/net/virtio.ko"
echo "writing a 200 MiB file, tools/toolkit.bin ..."
head -c 200M /dev/urandom >"$repo/tools/toolkit.bin"
(cd "$repo" && find . -type f -printf '%8s  %P\n' | sort -k2)

heading "Start portholed on a unix socket"
printf '$ portholed -l unix:%s -r %s -c %s --state-dir %s --cache-dir %s\n' \
    "$sock" "$repo" "$ctl" "$D/state" "$D/cache"
"$PORTHOLED" -l "unix:$sock" -r "$repo" -c "$ctl" --state-dir "$D/state" \
    --cache-dir "$D/cache" </dev/null 2>"$D/portholed.log" &
daemon=$!
ready=0
for ((i = 0; i < 100; i++)); do
	kill -0 "$daemon" 2>/dev/null || { cat "$D/portholed.log" >&2; die "portholed exited at startup"; }
	if ph ping >/dev/null 2>&1; then
		ready=1
		break
	fi
	sleep 0.1
done
((ready)) || die "portholed did not answer within 10 s"
echo "\$ export PORTHOLE_ENDPOINT=$PORTHOLE_ENDPOINT"
show ph ping

heading "List the repository as the guest sees it"
show ph ls -l /
show ph ls /tools

heading "Ask the daemon how it is doing"
show phctl status

heading "Pull the 200 MiB file, verified by SHA-256"
pull_log=$D/pull.log
cmd=("$PORTHOLE" get /tools/toolkit.bin "$D/guest/")
printf '$ porthole get /tools/toolkit.bin %s/\n' "$D/guest"
rc=0
if [[ -t 1 && -t 2 ]] && command -v script >/dev/null; then
	# script gives porthole a terminal so it draws its progress bar.
	printf -v quoted '%q ' "${cmd[@]}"
	script -qfec "$quoted" /dev/null | tee "$pull_log" || rc=$?
else
	"${cmd[@]}" 2>&1 | tee "$pull_log" || rc=$?
fi
((rc == 0)) || die "porthole get exited with status $rc"

heading "Compare checksums"
# The terminal copy has carriage returns and escape sequences around it.
reported=$(tr '\r' '\n' <"$pull_log" | sed -e 's/\x1b\[[0-9;]*[A-Za-z]//g' |
    sed -n 's/^verified sha256:\([0-9a-f]\{64\}\) .*/\1/p' | tail -n 1)
[[ -n $reported ]] || die "porthole printed no 'verified sha256:' line"
source_sum=$(sha256sum <"$repo/tools/toolkit.bin" | cut -d' ' -f1)
local_sum=$(sha256sum <"$D/guest/toolkit.bin" | cut -d' ' -f1)
printf '  verified by porthole: %s\n' "$reported"
printf '  sha256sum of source:  %s\n' "$source_sum"
printf '  sha256sum of copy:    %s\n' "$local_sum"
[[ $reported == "$source_sum" && $local_sum == "$source_sum" ]] ||
	die "checksums differ"
printf '%schecksums match%s\n' "$green" "$off"

heading "Stop portholed with SIGTERM"
kill -TERM "$daemon"
rc=0
wait "$daemon" || rc=$?
daemon=
((rc == 0)) || { cat "$D/portholed.log" >&2; die "portholed exited with status $rc"; }
echo "portholed exited with status 0"

heading "What portholed logged (one line per request)"
cat "$D/portholed.log"

printf '\n%sdemo finished: all steps passed%s\n' "$green" "$off"
