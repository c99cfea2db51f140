#!/usr/bin/env bash
# Eight pulls at once: four different files and four copies of the same
# one, plus stats and listings in between; every file arrives intact.
. "$(dirname "$0")/lib.sh"

step "create the repository"
for i in 1 2 3 4; do
	mkrand "$REPO/f$i.bin" "$((i * 24))M"
done
mkrand "$REPO/shared.bin" 64M
for ((i = 0; i < 20000; i++)); do echo "shared text line $i"; done >"$REPO/text.txt"

daemon_start

step "start 8 pulls at once"
pids=()
for i in 1 2 3 4; do
	mkdir -p "$T/d$i" "$T/s$i"
	"$PORTHOLE" -e "unix:$SOCK" get "f$i.bin" "$T/d$i/" </dev/null \
	    >"$T/d$i.log" 2>&1 &
	pids+=($!)
	track "$!"
	"$PORTHOLE" -e "unix:$SOCK" get shared.bin "$T/s$i/" </dev/null \
	    >"$T/s$i.log" 2>&1 &
	pids+=($!)
	track "$!"
done

step "the daemon answers other requests meanwhile"
ok ph stat f1.bin
ok ph ls -l /
ok ph get text.txt "$T/text.txt"
assert_same_file "$T/text.txt" "$REPO/text.txt"

step "wait for all 8 and verify"
failed=0
for p in "${pids[@]}"; do
	rc=0
	wait "$p" || rc=$?
	((rc == 0)) || { echo "pull pid $p exited $rc"; failed=1; }
done
if ((failed)); then
	tail -n 5 "$T"/d?.log "$T"/s?.log >&2
	fail "some concurrent pulls failed"
fi
for i in 1 2 3 4; do
	assert_same_file "$T/d$i/f$i.bin" "$REPO/f$i.bin"
	assert_same_file "$T/s$i/shared.bin" "$REPO/shared.bin"
	assert_file_has "$T/d$i.log" "verified sha256:$(sha_of "$REPO/f$i.bin")"
done

step "eight pulls of the same file into the same directory, concurrently"
# They race for one destination; whatever wins must be a whole, verified file.
mkdir -p "$T/same"
pids=()
for i in 1 2 3 4 5 6 7 8; do
	"$PORTHOLE" -e "unix:$SOCK" get -q text.txt "$T/same/" </dev/null \
	    >"$T/same$i.log" 2>&1 &
	pids+=($!)
	track "$!"
done
nok=0
for p in "${pids[@]}"; do
	rc=0
	wait "$p" || rc=$?
	((rc == 0)) && nok=$((nok + 1))
done
((nok >= 1)) || fail "none of the 8 racing pulls succeeded: $(cat "$T"/same?.log)"
assert_same_file "$T/same/text.txt" "$REPO/text.txt"

step "the log has one GET line per pull"
n=$(log_ops GET | grep -c 'result=OK')
((n >= 4 + 4 + 1 + nok)) || fail "expected >= $((9 + nok)) successful GET lines, got $n"

daemon_serving
daemon_stop
pass
