# Device resets in the middle of transfers, against the host's portholed as
# this guest's vhost-user vsock device (run with --boots 2).
#
# First boot: a pull lives through the host pausing the whole VM. Then a
# big pull is under way when the guest unbinds and rebinds
# its virtio-vsock driver (a device reset: the daemon must drop the
# connection, not itself); the pull fails as a lost connection and resumes
# afterwards to a verified file. Then another pull is under way when the
# guest reboots outright.  Second boot (the harness marked the host
# repository with .rebooted): the device comes back and a pull is verified.
. /test/lib.sh

ep=${PH_ENDPOINT:-vsock:2:7390}
out=/tmp/vhost-reset
sums=/srv/repo.sha256
drv=/sys/bus/virtio/drivers/vmw_vsock_virtio_transport
mkdir -p "$out"

ph() {
	porthole -e "$ep" "$@"
}

# wait_part FILE BYTES: until FILE.part holds BYTES, at most 30 s.
wait_part() {
	_i=0
	while [ $_i -lt 300 ]; do
		_s=$(stat -c %s "$1.part" 2>/dev/null || echo 0)
		[ "$_s" -ge "$2" ] && return 0
		sleep 0.1
		_i=$((_i + 1))
	done
	return 1
}

want=$(grep '  big.bin$' "$sums" | cut -d' ' -f1)
if ! ph_wait_for reach-host 100 ph ping; then
	exit 0
fi

if ph stat /.rebooted >/dev/null 2>&1; then
	# -- Second boot --------------------------------------------------------
	ph_result came-back pass "uptime=$(cut -d' ' -f1 /proc/uptime)"
	ph_check get-after-reboot ph get -q /big.bin "$out/big.bin"
	got=$(sha256sum "$out/big.bin" | cut -d' ' -f1)
	[ "$got" = "$want" ] && ph_result sha256-after-reboot pass || \
	    ph_result sha256-after-reboot fail "msg=sha256 $got, want $want"
	exit 0
fi

# -- A pause in the middle of a transfer ------------------------------------------
# The host stops the whole VM for 3 s and continues it (QEMU's stop and
# cont: the device's rings stop and resume where they were). The pull is
# held (SIGSTOP) until the pause is over, so it is surely mid-transfer;
# its connection must live through it and the file must verify.
ph get -q /big.bin "$out/big.bin" 2>"$out/pause.err" &
pid=$!
if wait_part "$out/big.bin" 4194304; then
	ph_result pause-pull-under-way pass
else
	ph_result pause-pull-under-way fail "msg=no 4 MiB arrived in 30 s"
fi
kill -STOP $pid
ph_host_pause 3 .paused
ph_wait_for paused-and-resumed 300 ph stat /.paused
kill -CONT $pid
wait $pid
rc=$?
ph_show_file pause-get "$out/pause.err"
[ $rc -eq 0 ] && ph_result pull-survived-pause pass || \
    ph_result pull-survived-pause fail "rc=$rc"
got=$(sha256sum "$out/big.bin" 2>/dev/null | cut -d' ' -f1)
[ "$got" = "$want" ] && ph_result sha256-after-pause pass || \
    ph_result sha256-after-pause fail "msg=sha256 $got, want $want"
rm -f "$out/big.bin"

# -- Device reset in the middle of a transfer ------------------------------------
dev=$(ls "$drv" | grep '^virtio' | head -n 1)
[ -n "$dev" ] && ph_result found-device pass "dev=$dev" || \
    ph_result found-device fail "msg=nothing bound to $drv"
ph get -q /big.bin "$out/big.bin" 2>"$out/reset.err" &
pid=$!
if wait_part "$out/big.bin" 4194304; then
	ph_result pull-under-way pass \
	    "part=$(stat -c %s "$out/big.bin.part")"
else
	ph_result pull-under-way fail "msg=no 4 MiB arrived in 30 s"
fi
echo "$dev" >"$drv/unbind" && ph_result unbind pass || \
    ph_result unbind fail
wait $pid
rc=$?
ph_show_file reset-get "$out/reset.err"
# Exit 6: the connection was lost (the guest's own socket was reset).
[ $rc -eq 6 ] && ph_result pull-cut pass "rc=$rc" || \
    ph_result pull-cut fail "rc=$rc" "msg=wanted 6 (connection lost)"
echo "$dev" >"$drv/bind" && ph_result rebind pass || ph_result rebind fail
ph_wait_for reach-host-again 100 ph ping && ph_result device-back pass
part=$(stat -c %s "$out/big.bin.part" 2>/dev/null || echo 0)
ph_check resume ph get -q --resume /big.bin "$out/big.bin"
got=$(sha256sum "$out/big.bin" | cut -d' ' -f1)
[ "$got" = "$want" ] && ph_result sha256-resumed pass "resumed_at=$part" || \
    ph_result sha256-resumed fail "msg=sha256 $got, want $want"
rm -f "$out/big.bin"

# -- Reboot in the middle of a transfer --------------------------------------------
ph get -q /big.bin "$out/big.bin" 2>/dev/null &
if wait_part "$out/big.bin" 4194304; then
	ph_result reboot-mid-pull pass
else
	ph_result reboot-mid-pull fail "msg=no 4 MiB arrived in 30 s"
fi
ph_host_touch .rebooted
# The mark must be made before the next boot asks for it.
ph_wait_for marked 100 ph stat /.rebooted
sync
reboot -f
sleep 30
