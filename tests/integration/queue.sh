#!/usr/bin/env bash
# The transfer queue: one slot by default, round robin by peer, time slices,
# BUSY past the limits, stalled readers dropped, leaving while waiting,
# request timeout, and `portholectl queue`.
. "$(dirname "$0")/lib.sh"

QC=$LIB_DIR/queue_client.py

# qc SPEC...: runs queue_client.py against $SOCK; JSON lines land in $OUT.
qc() {
	run python3 "$QC" "$SOCK" --timeout 90 "$@"
	[[ $RC == 0 ]] || fail "queue client failed$(last_run)"
}

# The names of the connections in $OUT that ended with END and a good digest,
# in the order they ended.
ended_ok() {
	python3 -c '
import json, sys
for l in open(sys.argv[1]):
    d = json.loads(l)
    if d["result"] == "END" and d["ok"]:
        print(d["name"])' "$OUT" | tr '\n' ' '
}

# field NAME KEY: one field of one connection's line in $OUT.
field() {
	python3 -c '
import json, sys
for l in open(sys.argv[1]):
    d = json.loads(l)
    if d["name"] == sys.argv[2]:
        print(json.dumps(d.get(sys.argv[3])))' "$OUT" "$1" "$2"
}

mkdir -p "$REPO/q"
for n in 1a 1b 1c 2a 3a 3b small; do
	mkrand "$REPO/q/$n" 4096
done
# Big enough to fill any socket buffer, so a reader that stops stalls.
truncate -s 64M "$REPO/q/stall"
truncate -s 2G "$REPO/q/big"

step "fairness: round robin across 3 declared peers, FIFO within each"
# A reader that stops yields the slot after a quantum when others wait (see
# slice.sh). Here it must keep the slot until it is dropped, so that
# everyone queues behind it first: a quantum longer than the stall timeout.
LONG_QUANTUM=(--quantum-ms 60000)
daemon_start -v --test-declared-peer --stall-timeout 2 "${LONG_QUANTUM[@]}"
qc "name=blocker,peer=9,path=/q/stall,read=stop" \
    "name=1a,peer=1,path=/q/1a" "name=1b,peer=1,path=/q/1b" \
    "name=1c,peer=1,path=/q/1c" "name=2a,peer=2,path=/q/2a" \
    "name=3a,peer=3,path=/q/3a" "name=3b,peer=3,path=/q/3b"
assert_eq "$(ended_ok)" "1a 2a 3a 1b 3b 1c " "serving order"
assert_eq "$(field 1a queued)" "[1]" "QUEUED frames of the first waiter"
# 3b came last: third in line behind 1b, then up one by one.
assert_eq "$(field 3b queued)" "[5, 4, 3, 2, 1]" "QUEUED frames of 3b"
assert_eq "$(field blocker closed_by_server)" "true" "stalled reader dropped"
assert_file_has "$DLOG" "stopped reading for"
assert_file_has "$DLOG" "declared=9 op=GET path=/q/stall result=TIMEOUT"

step "a stalled reader loses the slot; the next request is served"
python3 "$QC" "$SOCK" --timeout 60 "name=s,path=/q/stall,read=stop,hold=8" \
    >"$T/stall.out" 2>&1 &
STALL_PID=$!
track "$STALL_PID"
wait_for 10 queue_has "/q/stall" ||
	fail "the stalled reader never got the slot: $(phctl queue)"
ok ph get /q/small "$T/small"
assert_same_file "$T/small" "$REPO/q/small"
wait "$STALL_PID" || fail "stalled client failed: $(cat "$T/stall.out")"
assert_file_has "$T/stall.out" '"closed_by_server": true'

step "disconnecting while waiting leaves the queue; the others move up"
qc "name=blocker,peer=9,path=/q/stall,read=stop" \
    "name=w1,peer=1,path=/q/1a,drop=0.5" "name=w2,peer=2,path=/q/2a" \
    "name=w3,peer=3,path=/q/3a"
assert_eq "$(field w1 result)" '"dropped"' "w1"
assert_eq "$(field w2 queued)" "[2, 1]" "QUEUED frames of w2"
assert_eq "$(field w3 queued)" "[3, 2, 1]" "QUEUED frames of w3"
assert_eq "$(ended_ok)" "w2 w3 " "served after the drop"
daemon_stop

step "time slices: a small pull finishes while a 2 GiB pull streams"
daemon_start -v --test-declared-peer
# About 8 s for the big file: slow enough that it is still streaming.
python3 "$QC" "$SOCK" --timeout 200 \
    "name=big,peer=1,path=/q/big,read=rate:268435456" >"$T/big.out" 2>&1 &
BIG_PID=$!
track "$BIG_PID"
wait_for 60 queue_has "/q/big" ||
	fail "the big pull never started: $(phctl queue)"
sleep 1
ok ph get /q/small "$T/small2"
assert_same_file "$T/small2" "$REPO/q/small"
kill -0 "$BIG_PID" 2>/dev/null ||
	fail "the 2 GiB pull ended before the small one: $(cat "$T/big.out")"
run phctl --json queue
assert_eq "$RC" 0 "portholectl queue --json exit"
jcheck "$OUT" 'docs[0]["max_active"] == 1 and len(docs[0]["active"]) == 1 and docs[0]["active"][0]["path"] == "/q/big" and docs[0]["active"][0]["bytes_sent"] > 0'
wait "$BIG_PID" || fail "big client failed: $(cat "$T/big.out")"
assert_file_has "$T/big.out" '"result": "END", "bytes": 2147483648, "ok": true'
assert_file_has "$DLOG" "yielding"
daemon_stop

step "limits: BUSY past --max-queue and --max-per-peer"
daemon_start --test-declared-peer --max-queue 2 --max-per-peer 2 \
    --stall-timeout 3 "${LONG_QUANTUM[@]}"
python3 "$QC" "$SOCK" --timeout 60 "name=blocker,peer=9,path=/q/stall,read=stop" \
    "name=a,peer=1,path=/q/1a" "name=b,peer=2,path=/q/2a" \
    >"$T/limits.out" 2>&1 &
LIM_PID=$!
track "$LIM_PID"
wait_for 10 queue_has "waiting: 2 " ||
	fail "the queue did not fill: $(phctl queue)"
run phctl queue
assert_out_has "/q/stall"
assert_out_has "declared:1"
expect_rc 5 ph get --wait 0 /q/small "$T/busy"
assert_err_has "busy"
assert_no_file "$T/busy"
wait "$LIM_PID" || fail "limits client failed"
assert_file_has "$T/limits.out" '"name": "a", "peer": 1, "queued": [1], "result": "END"'
# Per peer: peer 9 holds the slot and one more waits; a third is refused.
qc "name=blocker,peer=9,path=/q/stall,read=stop" "name=x,peer=9,path=/q/1a" \
    "name=y,peer=9,path=/q/1b"
assert_eq "$(field y result)" '"ERROR 9"' "third request of one peer"
assert_eq "$(field x result)" '"END"' "second request of one peer"

step "the first request must come within --request-timeout"
raw 6 "$(hello_hex)"
assert_out_has "error code=15"
assert_out_has "closed"
daemon_serving
daemon_stop

step "1000 clients waiting at once are all served"
ulimit -n 8192 2>/dev/null || ulimit -n "$(ulimit -Hn)"
(($(ulimit -n) >= 4200)) ||
	fail "cannot raise the descriptor limit to 4200 for 1000 clients (it is $(ulimit -n))"
{
	# The blocker stalls for 12 s: long enough for one keepalive QUEUED.
	daemon_start --max-queue 2000 --test-declared-peer --stall-timeout 12 \
	    "${LONG_QUANTUM[@]}"
	rss0=$(awk '/^VmRSS/ { print $2 }' "/proc/$DAEMON_PID/status")
	specs=("name=blocker,peer=100000,path=/q/stall,read=stop")
	for ((i = 1; i <= 1000; i++)); do
		specs+=("name=c$i,peer=$i,path=/q/small")
	done
	python3 "$QC" "$SOCK" --timeout 200 "${specs[@]}" >"$T/many.out" 2>&1 &
	MANY_PID=$!
	track "$MANY_PID"
	wait_for 100 queue_has "waiting: 1000 " ||
		fail "1000 clients did not queue: $(phctl queue | head -n 3)"
	rss=$(awk '/^VmRSS/ { print $2 }' "/proc/$DAEMON_PID/status")
	echo "daemon VmRSS: $rss0 kB idle, $rss kB with 1000 waiting clients"
	wait "$MANY_PID" || fail "the 1000-client run failed"
	n=$(grep -c '"result": "END", "bytes": 4096, "ok": true' "$T/many.out")
	assert_eq "$n" 1000 "small pulls served"
	OUT=$T/many.out
	assert_eq "$(field c1 queued)" "[1, 1]" "QUEUED of c1 (entry, keepalive)"
	daemon_stop
}

pass
