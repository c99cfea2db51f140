#!/usr/bin/env bash
# A busy host: requests sent in time are served however late the daemon
# reads them, partial frames do not hold a connection, 1000 clients beside
# two CPU hogs are all served, and one client with hundreds of connections
# locks nobody else out.
. "$(dirname "$0")/lib.sh"

LC=$LIB_DIR/late_client.py

# lc ARGS...: runs late_client.py; its JSON lines land in $OUT.
lc() {
	run python3 "$LC" "$@"
	[[ $RC == 0 ]] || fail "late client failed$(last_run)"
}

# conn_is NAME KEY VALUE: fails unless the connection NAME's KEY in the
# JSON lines of $OUT is VALUE (a Python literal).
conn_is() {
	jcheck "$OUT" "[d.get('$2') for d in docs if d.get('name') == '$1'] == [$3]"
}

# $T/gated.sh: portholed with its stderr through a gate. Stopping the gate
# leaves the daemon stuck in a log line, busy, past the request deadlines,
# while requests arrive; when it goes on it runs its due timers before it
# polls.
cat >"$T/gated.sh" <<EOF
#!/usr/bin/env bash
exec "$PORTHOLED" "\$@" 2> >(exec python3 "$LC" gate "$T/gate.pid")
EOF
chmod +x "$T/gated.sh"

# $T/limited.sh: portholed with 256 descriptors.
cat >"$T/limited.sh" <<EOF
#!/bin/sh
ulimit -n 256 || exit 1
exec "$PORTHOLED" "\$@"
EOF
chmod +x "$T/limited.sh"

# crowd MAX ARGS...: 300 connections of one client against a
# 256-descriptor daemon; another client's pull and `portholectl status` get
# through, and the daemon keeps at most MAX data connections open.
crowd() {
	local max=$1
	shift
	PORTHOLED=$T/limited.sh daemon_start "$@"
	python3 "$LC" hold "$SOCK" 300 20 >"$T/hold.out" 2>&1 &
	HOLD_PID=$!
	track "$HOLD_PID"
	wait_for 30 grep -q '^opened' "$T/hold.out" ||
		fail "the crowd did not connect: $(cat "$T/hold.out")"
	start=$SECONDS
	run timeout 15 "$PORTHOLE" -e "unix:$SOCK" get /small "$T/other"
	[[ $RC == 0 ]] || fail "another client's pull failed$(last_run)"
	assert_same_file "$T/other" "$REPO/small"
	run timeout 15 "$PORTHOLECTL" -s "$CTL" --json status
	[[ $RC == 0 ]] || fail "portholectl status failed$(last_run)"
	jcheck "$OUT" "docs[0]['connections'] <= $max"
	((SECONDS - start <= 10)) ||
		fail "the pull and the status took $((SECONDS - start)) s"
	rm -f "$T/other"
	kill "$HOLD_PID" 2>/dev/null || true
	wait "$HOLD_PID" 2>/dev/null || true
}

mkrand "$REPO/small" 4096
SMALL_SHA=$(sha_of "$REPO/small")

step "requests sent while the daemon hangs for 5 s are served; a trickler is not"
rm -f "$T/gate.pid"
PORTHOLED=$T/gated.sh daemon_start -v --request-timeout 2
wait_for 10 test -s "$T/gate.pid" || fail "the log gate did not start"
track "$(cat "$T/gate.pid")"
lc late "$SOCK" "$(cat "$T/gate.pid")" /small 5
for n in acked queued; do
	conn_is $n result "'END'"
	conn_is $n sha256 "'$SMALL_SHA'"
done
conn_is trickle result "'ERROR 15'"
daemon_serving
daemon_stop

step "the same through a vhost-user device: a GET left in its ring is served"
rm -f "$T/gate.pid"
PORTHOLED=$T/gated.sh daemon_start -v --request-timeout 2 \
    --vhost-user "$T/vm.sock,cid=3"
wait_for 10 test -s "$T/gate.pid" || fail "the log gate did not start"
track "$(cat "$T/gate.pid")"
run python3 "$LIB_DIR/vhost_frontend.py" "$T/vm.sock" 3 late \
    "$(cat "$T/gate.pid")" "$SOCK" /small "$SMALL_SHA" 5
[[ $RC == 0 ]] || fail "the GET through the device was not served$(last_run)"
assert_file_has "$DLOG" "peer=vsock:3 op=GET path=/small result=OK"
daemon_serving
daemon_stop

step "a client that has not read its HELLO_ACK yet still gets to send its GET"
daemon_start --request-timeout 1 --stall-timeout 4
lc sleepy "$SOCK" /small 2.5
conn_is sleepy result "'END'"
conn_is sleepy sha256 "'$SMALL_SHA'"
# One that never reads is dropped at the stall timeout.
python3 "$LC" sleepy "$SOCK" /small 6 >"$T/sleepy.out" 2>&1 &
SLEEPY_PID=$!
track "$SLEEPY_PID"
wait_for 6 grep -q "no request within 1000 ms of the HELLO_ACK" "$DLOG" ||
	fail "a client that never read its HELLO_ACK was not dropped"
wait "$SLEEPY_PID" || fail "the sleepy client failed: $(cat "$T/sleepy.out")"
assert_file_lacks "$T/sleepy.out" '"result": "END"'
daemon_serving
daemon_stop

step "a partial frame after a request does not count: dropped at the timeout"
daemon_start -v --request-timeout 2
lc trickle "$SOCK" /small
conn_is trickle result "'ERROR 15'"
# Dropped about 2 s after its first byte.
jcheck "$OUT" '1.5 <= docs[0]["t"] <= 4'
assert_file_has "$DLOG" "request still incomplete 2000 ms after its first byte"

daemon_stop

step "the idle timeout counts from the last request"
daemon_start --idle-timeout 2
lc pings "$SOCK" 6 0.7
conn_is pings pongs 6
daemon_stop
daemon_start --idle-timeout 1
lc pings "$SOCK" 2 2.5
conn_is pings pongs 1
daemon_serving
daemon_stop

step "1000 clients at once beside two CPU hogs: all served"
daemon_start
hogs=()
for i in 1 2; do
	sh -c 'while :; do :; done' &
	hogs+=($!)
	track "$!"
done
mkdir -p "$T/many"
start=$SECONDS
pids=()
for ((i = 1; i <= 1000; i++)); do
	"$PORTHOLE" -e "unix:$SOCK" get -q /small "$T/many/$i" </dev/null \
	    >"$T/many/$i.log" 2>&1 &
	pids+=($!)
done
lost=0
for p in "${pids[@]}"; do
	wait "$p" || lost=$((lost + 1))
done
for p in "${hogs[@]}"; do
	kill "$p"
	wait "$p" 2>/dev/null || true
done
echo "1000 clients beside two hogs: $lost failed, $((SECONDS - start)) s"
if ((lost > 0)); then
	cat "$T"/many/*.log | sort | uniq -c | sort -rn | head -n 5 >&2
	fail "$lost of 1000 clients failed"
fi
n=$(cd "$T/many" && sha256sum $(seq 1 1000) | grep -c "^$SMALL_SHA ")
assert_eq "$n" 1000 "clients that got the right file"
daemon_serving
daemon_stop

step "300 connections of one client, 256 descriptors: the others get in"
crowd 16
assert_file_has "$DLOG" "closing an idle connection: the client opened one more than its limit"
daemon_stop

step "without a per-client limit, the descriptor reserve lets them in"
crowd 230 --max-conns-per-peer 1000
assert_file_has "$DLOG" "closing an idle connection: the daemon is short of descriptors"
daemon_stop

step "a client over its limit with no idle connection gets BUSY"
daemon_start --max-conns-per-peer 2
# HELLO only: no connection is idle, the third one is refused.
lc hold "$SOCK" 3 2 hello
tail -n 1 "$OUT" >"$T/hold.json"
jcheck "$T/hold.json" 'docs[0]["busy"] == 1 and docs[0]["open"] == 2'
assert_file_has "$DLOG" "has 2 connections open, none idle (limit 2): refusing one"
daemon_stop

pass
