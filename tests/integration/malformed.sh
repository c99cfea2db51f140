#!/usr/bin/env bash
# Malformed input on the wire: garbage, a bad magic, a bad version, oversized
# length fields, requests before HELLO, truncated payloads, frames of the
# wrong direction. Each must close only that connection (with ERROR PROTOCOL
# where the daemon can send it) while the daemon keeps serving new clients.
. "$(dirname "$0")/lib.sh"

echo hello >"$REPO/f.txt"
daemon_start

# expect_closed_with CODE: the last raw exchange ended with ERROR CODE as its
# final frame and the daemon closed the connection.
expect_closed_with() {
	grep -qx 'closed' "$OUT" || fail "the daemon did not close the connection$(last_run)"
	local last
	last=$(grep '^error code=' "$OUT" | tail -n 1)
	[[ $last =~ ^error\ code=($1)\  ]] ||
		fail "expected a final ERROR with code $1$(last_run)"
	grep -q '^trailing' "$OUT" && fail "a partial frame came back$(last_run)"
	daemon_serving
}

step "positive control: HELLO and PING in raw frames"
raw 2 "$(hello_hex)" "$(ping_hex 123456789)"
grep -qx 'hello_ack version=1 features=7 max_payload=[0-9]*' "$OUT" ||
	fail "no HELLO_ACK(version 1, all features)$(last_run)"
grep -qx 'pong nonce=123456789' "$OUT" || fail "no PONG$(last_run)"
grep -qx 'open' "$OUT" || fail "a good client was disconnected$(last_run)"

step "HELLO sent in pieces is still one frame"
h=$(hello_hex)
raw 2 "${h:0:6}" "${h:6:10}" "${h:16}" "$(ping_hex 5)"
grep -qx 'pong nonce=5' "$OUT" || fail "split HELLO not reassembled$(last_run)"

step "garbage bytes"
raw 5 "00$(head -c 200 /dev/urandom | xxd -p | tr -d '\n')"
expect_closed_with 1

step "text instead of frames"
raw 5 "$(printf 'GET /etc/passwd HTTP/1.0\r\n\r\n' | xxd -p | tr -d '\n')"
expect_closed_with 1

step "bad magic"
raw 5 "5849010100000016$(hello_hex | cut -c17-)"
expect_closed_with 1

step "unsupported frame version"
raw 5 "5048020100000016$(hello_hex | cut -c17-)"
expect_closed_with '1|2'

step "oversized length field: 4 GiB request"
raw 5 "50480101ffffffff"
expect_closed_with 1

step "length one over the request limit (8193)"
raw 5 "5048010100002001$(printf '00%.0s' {1..64})"
expect_closed_with 1

step "oversized length field after HELLO, reply type (> 1 MiB)"
raw 5 "$(hello_hex)" "5048018400100001"
expect_closed_with 1

step "GET before HELLO"
raw 5 "$(get_hex f.txt)"
expect_closed_with 1

step "PING before HELLO"
raw 5 "$(ping_hex 1)"
expect_closed_with 1

step "no common version"
raw 5 "$(hello_hex 5 9)"
expect_closed_with 2

step "truncated GET payload (string longer than the frame)"
raw 5 "$(hello_hex)" "$(frame 02 "$(printf '%016x%08x' 0 0)0064$(printf 'f.txt' | xxd -p)")"
grep -q '^frame type=0x81 ' "$OUT" || fail "no HELLO_ACK$(last_run)"
expect_closed_with 1

step "GET with trailing bytes"
raw 5 "$(hello_hex)" "$(frame 02 "$(printf '%016x%08x' 0 0)$(hex_str f.txt)deadbeef")"
expect_closed_with 1

step "unknown request type"
raw 5 "$(hello_hex)" "$(frame 42 "")"
expect_closed_with 1

step "a reply type sent by the client"
raw 5 "$(hello_hex)" "$(frame 89 "$(printf '%016x' 1)")"
expect_closed_with 1

step "a second HELLO"
raw 5 "$(hello_hex)" "$(hello_hex)"
expect_closed_with 1

step "CTL on the data socket"
raw 5 "$(hello_hex)" "$(frame 10 "000001$(hex_str status)")"
expect_closed_with '1|17'

step "a NUL inside a path: refused"
raw 5 "$(hello_hex)" "$(frame 02 "$(printf '%016x%08x' 0 0)0005662e00747874")"
grep -q '^error code=' "$OUT" || fail "no ERROR for a path with a NUL$(last_run)"
daemon_serving

step "half a header, then the client hangs up"
raw 1 "504801"
grep -qx 'open' "$OUT" || fail "the daemon closed a connection that was waiting for a header$(last_run)"
daemon_serving

step "50 clients that connect and vanish, 20 idle ones"
python3 - "$SOCK" <<'EOF2' || fail "connecting 50 clients failed"
import socket, sys
for i in range(50):
    s = socket.socket(socket.AF_UNIX)
    s.connect(sys.argv[1])
    if i % 2:
        s.sendall(b"PH\x01")	# and vanish mid-header
    s.close()
EOF2
idle=()
for ((i = 0; i < 20; i++)); do
	python3 "$LIB_DIR/raw.py" "$SOCK" 4 "$(hello_hex)" >"$T/idle$i.out" 2>&1 &
	idle+=($!)
	track "$!"
done
sleep 1
ok ph get f.txt "$T/f.txt"
assert_same_file "$T/f.txt" "$REPO/f.txt"
for p in "${idle[@]}"; do wait "$p"; done
for ((i = 0; i < 20; i++)); do
	grep -q '^hello_ack ' "$T/idle$i.out" || fail "idle client $i got no HELLO_ACK: $(cat "$T/idle$i.out")"
done

step "garbage on the control socket"
RAW_SOCK=$CTL raw 5 "$(head -c 64 /dev/urandom | xxd -p | tr -d '\n')"
grep -qx 'closed' "$OUT" || fail "the control socket kept a garbage connection open$(last_run)"
RAW_SOCK=$CTL raw 5 "$(hello_hex)"
grep -qx 'closed' "$OUT" || fail "the control socket accepted a HELLO$(last_run)"
RAW_SOCK=$CTL raw 5 "5048011000ffffff"
grep -qx 'closed' "$OUT" || fail "the control socket accepted an oversized CTL$(last_run)"
ok phctl status
daemon_serving

step "the daemon still serves files"
ok ph get f.txt "$T/f2.txt"
assert_same_file "$T/f2.txt" "$REPO/f.txt"

daemon_stop
pass
