#!/usr/bin/env bash
# --wait: a client that finds the host not listening yet, or busy, keeps
# trying with backoff until its deadline. Clients started before the daemon
# get through once it is up; a BUSY reply (a full queue, a HELLO turned
# away) is retried until the queue drains; --wait 0 fails at once as
# before, with the same message and exit status.
. "$(dirname "$0")/lib.sh"

FAKE=$T/fake.sock

echo "hello" >"$REPO/f.txt"
mkdir -p "$REPO/q" "$T/dl"
mkrand "$REPO/q/small" 4096
mkrand "$REPO/q/1a" 4096
# Big enough to fill any socket buffer, so a reader that stops stalls.
truncate -s 64M "$REPO/q/stall"
printf '/f.txt %s 0644\n' "$T/dl/synced" >"$T/manifest"

# ms: the monotonic clock in milliseconds.
ms() {
	local up
	read -r up _ </proc/uptime
	echo $((${up/./} * 10))
}

# bg NAME CMD...: runs CMD in the background, output in $T/NAME.out and
# $T/NAME.err; its pid goes to PIDS[NAME].
declare -A PIDS
bg() {
	local name=$1
	shift
	"$@" >"$T/$name.out" 2>"$T/$name.err" </dev/null &
	PIDS[$name]=$!
	track $!
}

# bg_ok NAME: waits for NAME and fails unless it exited 0.
bg_ok() {
	local rc=0
	wait "${PIDS[$1]}" || rc=$?
	((rc == 0)) || fail "$1 exited $rc: $(cat "$T/$1.err" "$T/$1.out" 2>/dev/null)"
}

# expect_quick_rc N MAX_MS CMD...: expect_rc that also fails when CMD took
# longer than MAX_MS.
expect_quick_rc() {
	local want=$1 max=$2 t0
	shift 2
	t0=$(ms)
	expect_rc "$want" "$@"
	(($(ms) - t0 <= max)) || fail "$* took $(($(ms) - t0)) ms (at most $max)"
}

step "--wait takes whole seconds"
expect_rc 2 "$PORTHOLE" --wait -1 ping
assert_err_has "--wait takes whole seconds"
expect_rc 2 "$PORTHOLE" --wait 1.5 ping
expect_rc 2 ph ping --wait 4294968
expect_rc 2 ph get --wait '' f.txt "$T/dl/"

step "no socket yet: every command started before the daemon gets through"
bg get ph get /f.txt "$T/dl/got"
bg ls ph ls /
bg stat ph stat /f.txt
bg ping ph ping
bg sync ph sync "$T/manifest"
sleep 2
for n in get ls stat ping sync; do
	kill -0 "${PIDS[$n]}" 2>/dev/null ||
		fail "$n did not wait for the daemon: $(cat "$T/$n.err")"
done
daemon_start
for n in get ls stat ping sync; do
	bg_ok "$n"
	# stderr is no terminal: no "retrying" note.
	assert_file_lacks "$T/$n.err" "retrying"
done
assert_same_file "$T/dl/got" "$REPO/f.txt"
assert_same_file "$T/dl/synced" "$REPO/f.txt"
assert_file_has "$T/ls.out" "f.txt"
assert_file_has "$T/stat.out" "size:   6"
assert_file_has "$T/sync.out" "updated $T/dl/synced"
daemon_stop

step "a socket file nobody listens on (refused) until the daemon comes"
python3 -c 'import socket, sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])' "$SOCK"
rm -f "$T/dl/got"
bg get ph get /f.txt "$T/dl/got"
sleep 2
daemon_start
bg_ok get
assert_same_file "$T/dl/got" "$REPO/f.txt"
daemon_stop

step "--wait 0: no daemon fails at once, as before"
assert_no_file "$SOCK"
expect_quick_rc 6 1500 ph --wait 0 ping
assert_eq "$(cat "$ERR")" "porthole: cannot connect to unix:$SOCK: No such file or directory" "message"
expect_quick_rc 6 1500 ph get --wait 0 /f.txt "$T/dl/none"
assert_no_file "$T/dl/none"
python3 -c 'import socket, sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])' "$SOCK"
expect_quick_rc 6 1500 ph ls --wait 0 /
assert_eq "$(cat "$ERR")" "porthole: cannot connect to unix:$SOCK: Connection refused" "message"
rm -f "$SOCK"

step "--wait 2: gives up after about 2 s, with the same message"
t0=$(ms)
expect_rc 6 ph --wait 2 stat /f.txt
dt=$(($(ms) - t0))
((dt >= 1800 && dt <= 8000)) || fail "--wait 2 gave up after $dt ms"
assert_eq "$(cat "$ERR")" "porthole: cannot connect to unix:$SOCK: No such file or directory" "message"

step "sync without a daemon: one wait, the other entries fail at once"
printf '/f.txt %s 0644\n/f.txt %s 0644\n/f.txt %s 0644\n' \
    "$T/dl/s1" "$T/dl/s2" "$T/dl/s3" >"$T/three"
t0=$(ms)
expect_rc 6 ph --wait 2 sync "$T/three"
dt=$(($(ms) - t0))
((dt >= 1800 && dt <= 8000)) || fail "sync gave up after $dt ms"
assert_eq "$(grep -c ': connection failed' "$OUT")" 3 "failed entries$(last_run)"

step "a full queue: a BUSY GET is asked again until the queue drains"
# The stalled blocker holds the only slot for 3 s and one request waits:
# with --max-queue 1 the next GET is BUSY until the blocker is dropped.
daemon_start --test-declared-peer --max-queue 1 --stall-timeout 3
fill_queue() {
	hold_slot "$T/blocker.out" "name=a,peer=1,path=/q/1a"
	wait_for 10 queue_has "waiting: 1 " ||
		fail "the queue did not fill: $(phctl queue)"
	PIDS[blocker]=$HOLD_PID
}
fill_queue
t0=$(ms)
ok ph get /q/small "$T/dl/small"
dt=$(($(ms) - t0))
assert_same_file "$T/dl/small" "$REPO/q/small"
assert_file_lacks "$ERR" "retrying"
grep -qE "op=GET path=/q/small result=BUSY" "$DLOG" ||
	fail "the GET was never BUSY (took $dt ms): $(log_ops GET)"
grep -qE "op=GET path=/q/small result=OK" "$DLOG" ||
	fail "the GET was not served after BUSY: $(log_ops GET)"
echo "BUSY GET served after $dt ms"
bg_ok blocker

step "a full queue with --wait 0: BUSY at once, as before"
fill_queue
expect_quick_rc 5 1500 ph get --wait 0 /q/small "$T/dl/busy"
assert_err_has "the server is busy"
assert_no_file "$T/dl/busy"
assert_no_file "$T/dl/busy.part"
bg_ok blocker

step "on a terminal the wait says so once"
fill_queue
script -qefc "$PORTHOLE -e unix:$SOCK get -q /q/small $T/dl/tty" \
    "$T/tty.log" >/dev/null 2>&1 </dev/null || fail "get on a terminal failed: $(cat "$T/tty.log")"
assert_same_file "$T/dl/tty" "$REPO/q/small"
assert_eq "$(grep -c 'porthole: host busy, retrying' "$T/tty.log")" 1 "notes in $(cat "$T/tty.log")"
bg_ok blocker
daemon_stop

step "HELLO turned away (BUSY, then closed): the client comes back"
dig=$(printf 'abcde' | sha256sum | cut -d' ' -f1)
rm -f "$FAKE"
bg fake python3 "$LIB_DIR/raw.py" --serve --busy 2 "$FAKE" 30 \
    "$(hello_ack_hex)" "$(meta_hex 5 "$dig")"
wait_for 10 test -S "$FAKE" || fail "the scripted server did not start"
ok "$PORTHOLE" -e "unix:$FAKE" stat /x
assert_out_has "sha256: $dig"
bg_ok fake
assert_eq "$(grep -c 'turned away type=0x01' "$T/fake.out")" 2 "turned away"
assert_file_has "$T/fake.out" "request type=0x03 "

step "HELLO turned away with --wait 0: BUSY (5) at once"
rm -f "$FAKE"
bg fake python3 "$LIB_DIR/raw.py" --serve --busy 1 "$FAKE" 30 "$(hello_ack_hex)"
wait_for 10 test -S "$FAKE" || fail "the scripted server did not start"
expect_quick_rc 5 1500 "$PORTHOLE" -e "unix:$FAKE" --wait 0 stat /x
assert_err_has "porthole: unix:$FAKE: the server is busy: too many connections (BUSY)"
kill "${PIDS[fake]}" 2>/dev/null || true

pass
