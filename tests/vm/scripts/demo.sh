# The guest's half of `make demo` (scripts/demo.sh): a VM with no network
# card pulls a file from the host's portholed through its vsock device,
# which that same portholed provides over vhost-user.  Lines starting with
# "> " are for the audience; the PH-RESULT lines are the checks.
. /test/lib.sh
set -o pipefail

ep=vsock:2:7390
file=${PH_DEMO_FILE:-/tools/toolkit.bin}
say() {
	echo "> $*"
}
# show CMD...: prints the command as typed, then its output, indented.
show() {
	say "\$ $*"
	"$@" 2>&1 | sed 's/^/>     /'
}

say "guest kernel $(uname -r), $(nproc) CPUs, $(awk '/^MemTotal:/ { print int($2 / 1024) }' /proc/meminfo) MiB"
nics=$(ls /sys/class/net | grep -v '^lo$' | tr '\n' ' ')
say "network interfaces besides lo: ${nics:-none}"
[ -z "$nics" ] && ph_result no-nic pass || ph_result no-nic fail "msg=$nics"
say "vsock transport: $(awk '/^vmw_vsock_virtio_transport / { print $1 }' /proc/modules) on PCI device $(ls /sys/bus/virtio/drivers/vmw_vsock_virtio_transport | grep virtio)"
if show porthole ping; then
	ph_result ping pass
else
	ph_result ping fail "msg=the host daemon did not answer on $ep"
	exit 0
fi
show porthole ls -l /tools
say "\$ porthole get $file /tmp/"
porthole get "$file" /tmp/ 2>&1 | sed 's/^/>     /'
got=/tmp/$(basename "$file")
if [ -f "$got" ]; then
	sum=$(sha256sum "$got" | cut -d' ' -f1)
	say "\$ sha256sum $got"
	say "    $sum"
	ph_result get pass "sha256=$sum" "bytes=$(stat -c %s "$got")"
else
	ph_result get fail "msg=$got was not written"
fi
