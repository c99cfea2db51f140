#!/usr/bin/env bash
# hostd/upstream.c, the relay's client, against a real portholed and a fake
# parent that misbehaves on purpose: content and digests, zstd, resume, the
# STAT/LIST memo and its TTL, a parent that goes away, comes back, or dies
# mid-transfer, and every kind of bad stream.
. "$(dirname "$0")/lib.sh"

: "${UPSTREAM_PROBE:?UPSTREAM_PROBE must point to the upstream_probe executable}"

PLOG=$T/probe.log
PROBE_PID=
PIN=
POUT=
LINE=

# probe_start ENDPOINT [OPTIONS]: runs upstream_probe as a coprocess on two
# FIFOs; its log lines (stderr) go to $PLOG.
probe_start() {
	local ep=$1
	shift
	rm -f "$T/pin" "$T/pout"
	mkfifo "$T/pin" "$T/pout"
	echo "#### probe $* $ep" >>"$PLOG"
	"$UPSTREAM_PROBE" "$@" "$ep" <"$T/pin" >"$T/pout" 2>>"$PLOG" &
	PROBE_PID=$!
	track "$PROBE_PID"
	exec {PIN}>"$T/pin" {POUT}<"$T/pout"
}

# probe CMD...: one command, its answer in $LINE.
probe() {
	printf '%s\n' "$*" >&"$PIN"
	IFS= read -r -t 90 LINE <&"$POUT" ||
		fail "the probe did not answer: $*$(tail -n 20 "$PLOG")"
	printf '   %s -> %.300s\n' "$*" "$LINE"
}

# field NAME: a NAME=value field of $LINE.
field() {
	local f=" $LINE"
	f=${f#* $1=}
	[[ " $LINE" == *" $1="* ]] || { echo "<none>"; return; }
	printf '%s' "${f%% *}"
}

# expect_field NAME VALUE: fails unless $LINE has NAME=VALUE.
expect_field() {
	[[ $(field "$1") == "$2" ]] ||
		fail "expected $1=$2 in: $LINE$(tail -n 20 "$PLOG")"
}

# Ends the probe (upstream_free, then the loop must empty) and checks it.
probe_stop() {
	local rc=0
	probe quit
	[[ $LINE == bye ]] || fail "the probe did not say bye: $LINE"
	exec {PIN}>&- {POUT}<&-
	wait "$PROBE_PID" || rc=$?
	PROBE_PID=
	((rc == 0)) || fail "the probe exited with $rc$(tail -n 20 "$PLOG")"
	if grep -qE 'Sanitizer|runtime error:|leaked' "$PLOG"; then
		fail "sanitizer report from the probe: $(grep -m3 -E 'Sanitizer|runtime error:|leaked' "$PLOG")"
	fi
}

# count_log TEXT: lines of the probe log with TEXT.
count_log() {
	grep -cF -- "$1" "$PLOG" || true
}

mkrand "$REPO/big.bin" 3145728
mkrand "$REPO/huge.bin" 33554432
seq 1 300000 >"$REPO/text.txt"
mkdir -p "$REPO/many"
for i in $(seq -w 1 300); do
	printf '%s\n' "$i" >"$REPO/many/f$i"
done
printf 'one' >"$REPO/memo.txt"
ln -s text.txt "$REPO/link.txt"

daemon_start
P=unix:$SOCK

step "GET, STAT and LIST through the client"
probe_start "$P" --ttl 3000
probe up 10000
[[ $LINE == "up 1"* ]] || fail "not connected: $LINE"
probe get big.bin
expect_field status OK
expect_field bytes 3145728
expect_field hash "$(sha_of "$REPO/big.bin")"
expect_field digest "$(sha_of "$REPO/big.bin")"

step "text arrives intact (the parent compresses it with zstd)"
probe get text.txt "out=$T/text.out"
expect_field status OK
assert_same_file "$T/text.out" "$REPO/text.txt"
expect_field digest "$(sha_of "$REPO/text.txt")"

step "GET from an offset: the whole file's digest comes from the parent"
probe get big.bin 1000
expect_field status OK
expect_field bytes $((3145728 - 1000))
expect_field hash "$(tail -c +1001 "$REPO/big.bin" | sha256sum | cut -d' ' -f1)"
expect_field digest "$(sha_of "$REPO/big.bin")"

step "STAT and a LIST of two pages"
probe stat text.txt
expect_field status OK
expect_field size "$(fsize "$REPO/text.txt")"
expect_field ftype 1
expect_field digest "$(sha_of "$REPO/text.txt")"
expect_field real text.txt
# The parent says where a symlink leads (PATH frames).
probe stat link.txt
expect_field status OK
expect_field real text.txt
probe list many
expect_field status OK
expect_field count 300
want=$(cd "$REPO/many" && for f in *; do printf '%s:%s:1,' "$f" "$(fsize "$f")"; done)
expect_field entries "${want%,}"
probe stat no/such/file
expect_field status EREMOTE
expect_field code 5

step "a burst of identical STATs costs one round trip"
before=$(log_ops STAT | grep -c 'path=/many/f001 ' || true)
probe burst 100 many/f001
expect_field ok 100
after=$(log_ops STAT | grep -c 'path=/many/f001 ' || true)
((after - before == 1)) || fail "100 STATs made $((after - before)) requests upstream"

step "the memo keeps STAT and LIST for the TTL, then asks again"
probe stat memo.txt
expect_field size 3
probe list many
expect_field count 300
printf 'changed' >"$REPO/memo.txt"
printf 'x\n' >"$REPO/many/g-new"
probe stat memo.txt
expect_field size 3
probe list many
expect_field count 300
probe sleep 3200
probe stat memo.txt
expect_field size 7
probe list many
expect_field count 301
printf 'changed again' >"$REPO/memo.txt"
probe forget
probe stat memo.txt
expect_field size 13

step "parent down: -EHOSTDOWN at once"
daemon_stop
probe get big.bin
expect_field status EHOSTDOWN
(($(field ms) < 1000)) || fail "EHOSTDOWN took $(field ms) ms"
probe stat text.txt
expect_field status EHOSTDOWN
probe up 300
[[ $LINE == "up 0"* ]] || fail "connected with the parent down: $LINE"
wait_for 5 grep -qF "upstream $P: unavailable" "$PLOG" ||
	fail "no 'unavailable' line in the probe log"

step "parent back: the client reconnects by itself"
daemon_start
probe up 10000
[[ $LINE == "up 1"* ]] || fail "did not reconnect: $LINE"
probe get big.bin
expect_field status OK
expect_field digest "$(sha_of "$REPO/big.bin")"
[[ $(count_log "upstream $P: connected") == 2 ]] ||
	fail "expected two 'connected' lines: $(grep upstream "$PLOG")"
[[ $(count_log "upstream $P: unavailable") == 1 ]] ||
	fail "expected one 'unavailable' line: $(grep upstream "$PLOG")"

step "a cancelled GET resets the connection; the next one works"
probe get huge.bin cancelat=100000
expect_field status CANCELLED
probe get big.bin
expect_field status OK
expect_field digest "$(sha_of "$REPO/big.bin")"

step "parent killed mid-GET: -ECONNRESET"
probe get huge.bin "killpid=$DAEMON_PID" killat=1048576
expect_field status ECONNRESET
wait "$DAEMON_PID" 2>/dev/null || true
DAEMON_PID=
probe get big.bin
expect_field status EHOSTDOWN
probe_stop

step "a fake parent that breaks the rules"
python3 "$LIB_DIR/fake_parent.py" "$T/fake.sock" 2>>"$T/fake.log" &
track $!
wait_for 10 test -S "$T/fake.sock" || fail "the fake parent did not start"
probe_start "unix:$T/fake.sock" --stall 1500
probe up 10000
[[ $LINE == "up 1"* ]] || fail "not connected to the fake parent: $LINE"
fake_sha=$(python3 "$LIB_DIR/fake_parent.py" --content-sha)
for c in good zstd queued; do
	probe get $c
	expect_field status OK
	expect_field hash "$fake_sha"
	expect_field digest "$fake_sha"
done
probe get offset 5000
expect_field status OK
expect_field digest "$fake_sha"
# A DATA_ZSTD frame that arrived whole but does not decode (or declares
# too much) is damaged data: an integrity failure, as for the guest.
for c in baddigest changed short long zstdbomb zstdcorrupt; do
	probe get $c
	expect_field status EILSEQ
	expect_field code 14
	probe get good
	expect_field status OK
done
for c in garbage request datafirst; do
	probe get $c
	expect_field status EBADMSG
	probe get good
	expect_field status OK
done
probe stat listreply
expect_field status EBADMSG
probe get truncframe
expect_field status ECONNRESET
probe get missing
expect_field status EREMOTE
expect_field code 5
probe get silent
expect_field status ETIMEDOUT
(($(field ms) < 5000)) || fail "the stall took $(field ms) ms"
probe get good
expect_field status OK
# A reset is not an outage: no more state lines than the first connect.
[[ $(count_log "upstream unix:$T/fake.sock: connected") == 1 ]] ||
	fail "resets were logged as state changes: $(grep upstream "$PLOG")"
[[ $(count_log "upstream unix:$T/fake.sock: unavailable") == 0 ]] ||
	fail "resets were logged as outages: $(grep upstream "$PLOG")"
probe_stop

step "caller_hashes: the bytes are not hashed twice, END's digest is passed on"
probe_start "unix:$T/fake.sock" --caller-hashes
probe get good
expect_field status OK
expect_field digest "$fake_sha"
# The flipped byte goes unnoticed here: catching it is now the caller's job
# (the relay's cache checks what it stores against this digest).
probe get baddigest
expect_field status OK
expect_field digest "$fake_sha"
[[ $(field hash) != "$fake_sha" ]] || fail "baddigest arrived intact"
probe get short
expect_field status EILSEQ
probe get changed
expect_field status EILSEQ
probe_stop

step "a parent's PATH frames are checked like any other frame"
python3 "$LIB_DIR/fake_parent.py" "$T/realpath.sock" --realpath \
    2>>"$T/fake.log" &
track $!
wait_for 10 test -S "$T/realpath.sock" || fail "the fake parent did not start"
probe_start "unix:$T/realpath.sock"
probe stat some/file
expect_field status OK
expect_field real real/some/file
for c in nopath twopath badpath entrypath; do
	probe stat $c
	expect_field status EBADMSG
	probe stat good
	expect_field status OK
done
probe_stop

step "a parent without SHA-256 is no parent"
python3 "$LIB_DIR/fake_parent.py" "$T/nosha.sock" --nosha 2>>"$T/fake.log" &
track $!
wait_for 10 test -S "$T/nosha.sock" || fail "the fake parent did not start"
probe_start "unix:$T/nosha.sock"
probe sleep 300
probe get good
expect_field status EHOSTDOWN
grep -qF "offers no SHA-256" "$PLOG" || fail "no reason logged: $(tail -n 5 "$PLOG")"
probe_stop

pass
