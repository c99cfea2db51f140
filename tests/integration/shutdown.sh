#!/usr/bin/env bash
# SIGTERM while transfers run: an idle connection does not hold the daemon
# up; a transfer that fits in the grace time completes; one that does not is
# cut off with an error. The daemon exits 0 every time, and the client never
# leaves a bad final file.
. "$(dirname "$0")/lib.sh"

step "create the repository"
mkrand "$REPO/big.bin" 1G
mkrand "$REPO/mid.bin" 64M
mkrand "$REPO/quarter.bin" 256M
mkdir -p "$T/dl"

# wait_part FILE: waits until FILE.part has bytes, i.e. the transfer is on.
wait_part() {
	part_has_bytes() { [[ $(fsize "$1.part") -gt 0 ]]; }
	wait_for 60 part_has_bytes "$1" || fail "no bytes arrived in $1.part within 60s"
}

step "idle connections are closed at once on SIGTERM"
daemon_start --shutdown-grace 60
python3 "$LIB_DIR/raw.py" "$SOCK" 120 "$(hello_hex)" >"$T/idle.out" 2>&1 &
idle=$!
track "$idle"
sleep 1
t0=$SECONDS
daemon_stop TERM
((SECONDS - t0 < 20)) || fail "an idle connection kept the daemon up for $((SECONDS - t0))s"
wait "$idle"
grep -qx closed "$T/idle.out" || fail "the idle connection was not closed: $(cat "$T/idle.out")"

step "SIGINT also stops the daemon with status 0"
daemon_start
daemon_stop INT

step "a transfer that fits in the grace time completes"
daemon_start --shutdown-grace 120
"$PORTHOLE" -e "unix:$SOCK" get --no-zstd mid.bin "$T/dl/mid.bin" </dev/null \
    >"$T/pull1.log" 2>&1 &
pull=$!
track "$pull"
wait_part "$T/dl/mid.bin"
daemon_stop TERM
rc=0
wait "$pull" || rc=$?
((rc == 0)) || fail "the pull that had grace time failed with $rc: $(cat "$T/pull1.log")"
assert_same_file "$T/dl/mid.bin" "$REPO/mid.bin"
assert_no_file "$T/dl/mid.bin.part"

step "a transfer that cannot finish in the grace time is cut off"
daemon_start --shutdown-grace 2
"$PORTHOLE" -e "unix:$SOCK" get --no-zstd big.bin "$T/dl/big.bin" </dev/null \
    >"$T/pull2.log" 2>&1 &
pull=$!
track "$pull"
wait_part "$T/dl/big.bin"
# A stopped reader fills the socket, so the transfer cannot finish in time.
kill -STOP "$pull"
t0=$SECONDS
daemon_stop TERM
((SECONDS - t0 < 25)) || fail "the daemon took $((SECONDS - t0))s to stop with a 2s grace"
kill -CONT "$pull"
rc=0
wait "$pull" || rc=$?
echo "client exit status: $rc"
if ((rc == 0)); then
	assert_same_file "$T/dl/big.bin" "$REPO/big.bin"
else
	assert_eq "$rc" 6 "exit status of a pull cut off by shutdown"
	assert_no_file "$T/dl/big.bin"
fi
assert_file_has "$DLOG" "op=GET path=/big.bin result=SHUTDOWN" \
    "the daemon did not log the GET it cut off as SHUTDOWN"

step "the cut-off pull resumes against a new daemon"
daemon_start
if [[ -f $T/dl/big.bin ]]; then
	rm -f "$T/dl/big.bin"
fi
ok ph get --resume big.bin "$T/dl/big.bin"
assert_same_file "$T/dl/big.bin" "$REPO/big.bin"
rm -f "$T/dl/big.bin"

step "SIGTERM with several transfers running"
daemon_stop
daemon_start --shutdown-grace 1
pulls=()
for i in 1 2 3; do
	mkdir -p "$T/m$i"
	"$PORTHOLE" -e "unix:$SOCK" get quarter.bin "$T/m$i/" </dev/null >"$T/m$i.log" 2>&1 &
	pulls+=($!)
	track "$!"
done
for i in 1 2 3; do wait_part "$T/m$i/quarter.bin"; done
daemon_stop TERM
for i in 1 2 3; do
	rc=0
	wait "${pulls[$((i - 1))]}" || rc=$?
	echo "pull $i exit status: $rc"
	if ((rc == 0)); then
		assert_same_file "$T/m$i/quarter.bin" "$REPO/quarter.bin"
	else
		assert_eq "$rc" 6 "exit status of pull $i cut off by shutdown"
		assert_no_file "$T/m$i/quarter.bin"
	fi
done

pass
