#!/usr/bin/env bash
# Time slices against a slow reader, with the defaults (one transfer slot,
# 1 s quantum, 30 s stall timeout). A guest reading at 16 KiB/s holds the
# slot with its socket full, far from the end of its 1 MiB frame: another
# guest's small pull must not wait for that frame, and the slow guest,
# which keeps reading, must not be dropped as stalled. A guest that stops
# reading altogether yields its slot too, and is still dropped.
. "$(dirname "$0")/lib.sh"

QC=$LIB_DIR/queue_client.py

# now_ms: a monotonic-enough clock for durations, in milliseconds.
now_ms() {
	echo $(($(date +%s%N) / 1000000))
}

# timed_small NAME: pulls /s/small into $T/NAME; sets MS to how long it took.
timed_small() {
	local t0
	t0=$(now_ms)
	ok ph get /s/small "$T/$1"
	MS=$(($(now_ms) - t0))
	assert_same_file "$T/$1" "$REPO/s/small"
	echo "small pull behind the slow reader: $MS ms"
}

mkdir -p "$REPO/s"
# Far more than the daemon's socket buffer (4 MiB asked, 8 MiB granted):
# the socket fills at once and the slow reader's frame stays unfinished.
mkrand "$REPO/s/slow" 20M
printf 'fifteen bytes!\n' >"$REPO/s/small"
truncate -s 64M "$REPO/s/stall"

step "a small pull does not wait behind a 16 KiB/s reader"
daemon_start -v --max-active 1
python3 "$QC" "$SOCK" --timeout 100 \
    "name=slow,path=/s/slow,read=rate:16384,rcvbuf=4096" >"$T/slow.out" 2>&1 &
SLOW_PID=$!
track "$SLOW_PID"
SLOW_T0=$(now_ms)
wait_for 20 queue_has "/s/slow" ||
	fail "the slow reader never got the slot: $(phctl queue)"
# Well into its slice, with its socket full.
sleep 2
timed_small small1
((MS < 2000)) ||
	fail "the 15-byte pull took $MS ms behind the slow reader (want < 2000)"
assert_file_has "$DLOG" "in the middle of a frame, yielding"
kill -0 "$SLOW_PID" 2>/dev/null ||
	fail "the slow reader ended early: $(cat "$T/slow.out")"

step "the slow reader keeps its connection past the stall timeout"
# Still at 16 KiB/s for 35 s in all: longer than the 30 s stall timeout,
# while its socket stays too full to report room.
while (($(now_ms) - SLOW_T0 < 35000)); do
	kill -0 "$SLOW_PID" 2>/dev/null ||
		fail "the slow reader ended while reading: $(cat "$T/slow.out")"
	sleep 1
done
assert_file_lacks "$DLOG" "stopped reading"
queue_has "/s/slow" || fail "the slow reader lost its transfer: $(phctl queue)"
# Then it reads at full speed, to the end.
kill -USR1 "$SLOW_PID"
wait "$SLOW_PID" || fail "slow client failed: $(cat "$T/slow.out")"
assert_file_has "$T/slow.out" '"result": "END", "bytes": 20971520, "ok": true'
assert_file_has "$DLOG" "op=GET path=/s/slow result=OK bytes=20971520"
assert_file_lacks "$DLOG" "stopped reading"
daemon_stop

step "a reader that stops yields its slot, and is still dropped"
daemon_start -v --stall-timeout 4
python3 "$QC" "$SOCK" --timeout 60 "name=s,path=/s/stall,read=stop,hold=8" \
    >"$T/stall.out" 2>&1 &
STALL_PID=$!
track "$STALL_PID"
wait_for 20 queue_has "/s/stall" ||
	fail "the stopped reader never got the slot: $(phctl queue)"
sleep 1.5
timed_small small2
((MS < 2000)) ||
	fail "the 15-byte pull took $MS ms behind the stopped reader (want < 2000)"
wait "$STALL_PID" || fail "stopped client failed: $(cat "$T/stall.out")"
assert_file_has "$T/stall.out" '"closed_by_server": true'
assert_file_has "$DLOG" "stopped reading for"
assert_file_has "$DLOG" "op=GET path=/s/stall result=TIMEOUT"
daemon_stop

pass
