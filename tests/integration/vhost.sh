#!/usr/bin/env bash
# portholed --vhost-user without a VM: vhost_frontend.py plays QEMU and the
# guest's virtio-vsock driver on the daemon's vhost-user sockets. A request
# through the device, a GET with credit flow control, RST for a wrong port
# and a lying length, and guests that break their queues: each breaks only
# its own device, the daemon keeps serving the other VM and unix clients,
# and a new QEMU connecting to the broken VM's socket gets a working device.
# Also: option checking, a front-end hanging up mid-connection, an oversized
# message, a second front-end on a busy socket, and the socket's mode.
. "$(dirname "$0")/lib.sh"

FE=$LIB_DIR/vhost_frontend.py
VM0=$T/vm0.sock
VM1=$T/vm1.sock

fe() {	# fe SOCK CID SCENARIO [ARGS]
	run python3 "$FE" "$@"
}

step "bad --vhost-user values are usage errors"
for bad in "$T/x.sock" "$T/x.sock,cid=2" "$T/x.sock,cid=4294967295" \
    "$T/x.sock,cid=3,name=a/b" "$T/x.sock,cid=3,port=1" ",cid=3" \
    "$T/x.sock,cid=3,cid=4"; do
	run "$PORTHOLED" --vhost-user "$bad" -l "unix:$SOCK" -c "$CTL" \
	    --state-dir "$STATE" --check-config
	[[ $RC == 2 ]] || fail "--vhost-user '$bad' gave exit $RC, want 2$(last_run)"
	assert_err_has "--vhost-user"
done
run "$PORTHOLED" --vhost-user "$T/a.sock,cid=3" --vhost-user "$T/b.sock,cid=3" \
    -l "unix:$SOCK" -c "$CTL" --state-dir "$STATE" -r "$REPO"
[[ $RC == 1 ]] || fail "two devices with one CID gave exit $RC, want 1$(last_run)"
assert_err_has "share a path or a CID"

mkrand "$REPO/f.bin" 3M
want=$(sha_of "$REPO/f.bin")
daemon_start --vhost-user "$VM0,cid=3,name=alpha" \
    --vhost-user "$VM1,cid=4"

step "the vhost-user sockets are private"
for s in "$VM0" "$VM1"; do
	[[ -S $s ]] || fail "no socket $s"
	mode=$(stat -c %a "$s")
	[[ $mode == 600 ]] || fail "$s has mode $mode, want 600"
done

step "status shows each endpoint waiting for its QEMU"
out=$(phctl status) || fail "status failed"
grep -q "^vhost-user: *$VM0 (cid 3, vm alpha): waiting for QEMU$" <<<"$out" ||
	fail "status does not show vm0 waiting: $out"
grep -q "^vhost-user: *$VM1 (cid 4): waiting for QEMU$" <<<"$out" ||
	fail "status does not show vm1 waiting: $out"
out=$(phctl status --json) || fail "status --json failed"
python3 - "$VM0" "$out" <<'PY' || fail "status --json: $out"
import json, sys
eps = json.loads(sys.argv[2])["vhost_user"]
assert len(eps) == 2, eps
assert eps[0] == {"path": sys.argv[1], "cid": 3, "vm": "alpha",
                  "frontend": False, "running": False, "connections": 0,
                  "bytes_to_guest": 0}, eps[0]
assert eps[1]["cid"] == 4 and eps[1]["vm"] == "", eps[1]
PY

step "PING through the device; the CID comes from GET_CONFIG"
fe "$VM0" 3 ping
[[ $RC == 0 ]] || fail "ping through vm0 failed$(last_run)"
assert_file_has "$DLOG" "peer=vsock:3,vm=alpha op=PING"
fe "$VM1" 4 ping
[[ $RC == 0 ]] || fail "ping through vm1 failed$(last_run)"
assert_file_has "$DLOG" "peer=vsock:4 op=PING"

step "GET through an 8 KiB window: credit flow control both ways"
fe "$VM0" 3 get /f.bin "$want"
[[ $RC == 0 ]] || fail "GET through the device failed$(last_run)"
assert_file_has "$DLOG" "peer=vsock:3,vm=alpha op=GET path=/f.bin result=OK bytes=3145728"

step "RST for a wrong port and for a lying length"
fe "$VM0" 3 wrong-port
[[ $RC == 0 ]] || fail "wrong port$(last_run)"
fe "$VM0" 3 lying-len
[[ $RC == 0 ]] || fail "lying length$(last_run)"

step "a looping descriptor chain breaks only vm0's device"
fe "$VM0" 3 loop
[[ $RC == 0 ]] || fail "loop$(last_run)"
wait_for 5 grep -q "vm0.sock (cid 3, vm alpha): guest broke its vsock device: descriptor chain loops" "$DLOG" ||
	fail "no log line for the broken device"
daemon_serving
fe "$VM1" 4 ping
[[ $RC == 0 ]] || fail "vm1 suffered from vm0's breakage$(last_run)"

step "a descriptor index out of range, on the other VM"
fe "$VM1" 4 bad-index
[[ $RC == 0 ]] || fail "bad index$(last_run)"
wait_for 5 grep -q "(cid 4): guest broke its vsock device: descriptor index out of range" "$DLOG" ||
	fail "no log line for the bad index"
daemon_serving

step "a new QEMU on a broken VM's socket gets a fresh device"
fe "$VM0" 3 ping
[[ $RC == 0 ]] || fail "reconnect after breakage$(last_run)"

step "a front-end that hangs up mid-connection"
fe "$VM0" 3 hang-up
wait_for 5 grep -q "vm0.sock (cid 3, vm alpha): QEMU disconnected" "$DLOG" ||
	fail "the daemon did not notice the hang-up"
fe "$VM0" 3 ping
[[ $RC == 0 ]] || fail "reconnect after a hang-up$(last_run)"

step "an oversized vhost-user message drops that front-end only"
fe "$VM1" 4 oversized
[[ $RC == 0 ]] || fail "oversized$(last_run)"
assert_file_has "$DLOG" "QEMU dropped: request 5 with 1048576 bytes of payload"
fe "$VM1" 4 ping
[[ $RC == 0 ]] || fail "reconnect after an oversized message$(last_run)"

step "a second front-end on a socket in use is refused"
fe "$VM1" 4 busy
[[ $RC == 0 ]] || fail "busy$(last_run)"
assert_file_has "$DLOG" "a second front-end connected while one is active; refused"

step "clean stop removes the sockets"
daemon_stop
[[ -e $VM0 || -e $VM1 ]] && fail "vhost-user sockets left behind"
pass
