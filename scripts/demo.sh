#!/usr/bin/env bash
# The scene Porthole exists for: a virtual machine with no network card
# pulls a file from its host. portholed runs here, on the host, as the VM's
# virtio-vsock device over QEMU's vhost-user protocol (no kernel vsock
# module, no root); the VM boots Debian's cloud kernel under QEMU (TCG),
# and its porthole pulls a 200 MiB file, verified by SHA-256, which the
# host then checks too. The host's own vsock is never touched.
#
# Usage: scripts/demo.sh            (after `make build static`; `make demo`
#                                    does all of it)
# Environment: BUILD_DIR (default build/release: the host's portholed and
# portholectl), STATIC_DIR (default build/static: the statically linked
# porthole that goes into the VM), or PORTHOLED and PORTHOLECTL directly.
# KEEP=1 keeps the temp dir. The first run downloads Debian's cloud kernel
# package (about 27 MB, see tests/vm/README.md).
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-build/release}
[[ $build == /* ]] || build=$here/$build
static=${STATIC_DIR:-build/static}
[[ $static == /* ]] || static=$here/$static
PORTHOLED=${PORTHOLED:-$build/hostd/portholed}
PORTHOLECTL=${PORTHOLECTL:-$build/repo-tools/portholectl}
CID=3
VM=demo-vm

if [[ -t 1 ]]; then
	bold=$'\e[1m' green=$'\e[32m' red=$'\e[31m' dim=$'\e[2m' off=$'\e[0m'
else
	bold='' green='' red='' dim='' off=''
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
	phctl) shown="portholectl -s $ctl" ;;
	esac
	printf '$ %s %s\n' "$shown" "${*:2}"
	"$@"
}

for p in "$PORTHOLED" "$PORTHOLECTL"; do
	[[ -x $p ]] || die "$p is not built; run 'make build' (or 'make demo')"
done
[[ -x $static/guest-agent/porthole ]] ||
	die "$static/guest-agent/porthole is not built; run 'make static' (or 'make demo')"
command -v qemu-system-x86_64 >/dev/null ||
	die "qemu-system-x86_64 not found; run scripts/install-deps.sh"

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

vsock=$D/$VM.sock
ctl=$D/portholed.ctl
repo=$D/repo
phctl() { "$PORTHOLECTL" -s "$ctl" "$@"; }

heading "Create a repository on the host in $D"
mkdir -p "$repo/docs" "$repo/tools" "$D/state" "$D/cache"
cat >"$repo/README.txt" <<'EOF'
This directory is served by portholed. Guests pull files from it with
`porthole get`, verified by SHA-256.
EOF
printf '# Guide\n\nInstall the tools with `porthole get /tools/toolkit.bin`.\n' \
    >"$repo/docs/guide.md"
echo "writing a 200 MiB file, tools/toolkit.bin ..."
head -c 200M /dev/urandom >"$repo/tools/toolkit.bin"
(cd "$repo" && find . -type f -printf '%10s  %P\n' | sort -k2)

heading "Start portholed on the host as the VM's vsock device (vhost-user)"
printf '$ portholed --vhost-user %s,cid=%s,name=%s -r %s -c %s --state-dir %s --cache-dir %s\n' \
    "$vsock" "$CID" "$VM" "$repo" "$ctl" "$D/state" "$D/cache"
"$PORTHOLED" --vhost-user "$vsock,cid=$CID,name=$VM" -r "$repo" -c "$ctl" \
    --state-dir "$D/state" --cache-dir "$D/cache" </dev/null \
    2>"$D/portholed.log" &
daemon=$!
ready=0
for ((i = 0; i < 100; i++)); do
	kill -0 "$daemon" 2>/dev/null || { cat "$D/portholed.log" >&2; die "portholed exited at startup"; }
	if [[ -S $vsock ]] && phctl status >/dev/null 2>&1; then
		ready=1
		break
	fi
	sleep 0.1
done
((ready)) || die "portholed did not come up within 10 s"
echo "portholed listens on $vsock (mode $(stat -c %a "$vsock")): the VM's"
echo "virtio-vsock device; its guest gets CID $CID and reaches the daemon at vsock:2:7390."
show phctl status

heading "Boot the VM: no network card, a vhost-user vsock device, shared memory"
cat <<EOF
qemu-system-x86_64 -accel tcg -nodefaults -nic none -m 1536 \\
    -object memory-backend-memfd,id=mem,size=1536M,share=on \\
    -machine memory-backend=mem \\
    -chardev socket,id=vu0,path=$vsock \\
    -device vhost-user-vsock-pci,chardev=vu0 \\
    -kernel vmlinuz (Debian cloud kernel) -initrd (busybox + static porthole)
Inside, the stock kernel loads virtio_pci and vmw_vsock_virtio_transport
and runs porthole against vsock:2:7390.
EOF
vm_log=$D/vm.log
rc=0
python3 "$here/tests/vm/vmtest.py" run demo --workdir "$D/vm" \
    --vhost-socket "$vsock" --static-dir "$static" --script demo \
    --timeout 240 -v 2>&1 >"$D/vm.tap" | tee "$vm_log" |
    sed -n -e "s/^  vm0| > \(.*\)/  ${bold}guest>${off} \1/p" \
    -e "s/^vm: \(.*\)/  ${dim}vm: \1${off}/p" || rc=$?
((rc == 0)) || die "the VM run failed with status $rc"
if grep -q '^not ok' "$D/vm.tap"; then
	grep '^not ok\|^#' "$D/vm.tap" >&2
	die "a check in the VM failed (console log: $D/vm/console.log)"
fi
grep -q '^ok .* - demo.get$' "$D/vm.tap" || die "the guest reported no pull"

heading "Compare checksums"
guest_sum=$(sed -n 's/.*PH-RESULT name=demo.get status=pass sha256=\([0-9a-f]\{64\}\).*/\1/p' \
    "$D/vm/console.log" | tail -n 1)
verified=$(sed -n 's/.*verified sha256:\([0-9a-f]\{64\}\) .*/\1/p' "$vm_log" | tail -n 1)
source_sum=$(sha256sum <"$repo/tools/toolkit.bin" | cut -d' ' -f1)
printf '  verified by porthole in the VM: %s\n' "${verified:-none}"
printf '  sha256sum in the VM:            %s\n' "${guest_sum:-none}"
printf '  sha256sum on the host:          %s\n' "$source_sum"
[[ $verified == "$source_sum" && $guest_sum == "$source_sum" ]] ||
	die "checksums differ"
printf '%schecksums match%s\n' "$green" "$off"
rate=$(sed -n 's/.*verified sha256:[0-9a-f]* .*(\([0-9]* bytes\), \(.*\))$/\1 at \2/p' \
    "$vm_log" | tail -n 1)
[[ -n $rate ]] && echo "  $rate, through the vhost-user vsock device"

heading "Ask the daemon how it is doing"
show phctl status

heading "Stop portholed with SIGTERM"
kill -TERM "$daemon"
rc=0
wait "$daemon" || rc=$?
daemon=
((rc == 0)) || { cat "$D/portholed.log" >&2; die "portholed exited with status $rc"; }
echo "portholed exited with status 0"

heading "What portholed logged (one line per request)"
grep -v 'libvirt' "$D/portholed.log" || true

printf '\n%sdemo finished: all steps passed%s\n' "$green" "$off"
