#!/usr/bin/env bash
# Resuming from a .part file: a hand-made prefix, a pull killed with
# SIGKILL part way, a corrupted prefix (integrity failure, exit 7), a .part
# that is already complete, one longer than the file, and a stale .part
# without --resume. Also a file that changes while it is being sent (7), and
# a .part too large to hash within the daemon's first-request timeout.
. "$(dirname "$0")/lib.sh"

step "create the repository"
mkrand "$REPO/mid.bin" 20M
mkrand "$REPO/big.bin" 1G
mkrand "$REPO/changing.bin" 64M
mkdir -p "$T/dl"
size=$(fsize "$REPO/mid.bin")

daemon_start

step "resume from a hand-made prefix"
head -c 7654321 "$REPO/mid.bin" >"$T/dl/mid.bin.part"
ok ph get --resume --no-zstd mid.bin "$T/dl/mid.bin"
assert_same_file "$T/dl/mid.bin" "$REPO/mid.bin"
assert_no_file "$T/dl/mid.bin.part"
assert_verified_line "$T/dl/mid.bin" "$(sha_of "$REPO/mid.bin")" "$size"
# Only the missing bytes travelled.
assert_file_has "$DLOG" "op=GET path=/mid.bin result=OK bytes=$((size - 7654321)) " \
    "the daemon did not log a resumed GET of $((size - 7654321)) bytes"

step "resume with zstd allowed"
rm -f "$T/dl/mid.bin"
head -c 1 "$REPO/mid.bin" >"$T/dl/mid.bin.part"
ok ph get --resume mid.bin "$T/dl/mid.bin"
assert_same_file "$T/dl/mid.bin" "$REPO/mid.bin"

step "resume from a .part that is already complete"
rm -f "$T/dl/mid.bin"
cp "$REPO/mid.bin" "$T/dl/mid.bin.part"
ok ph get --resume mid.bin "$T/dl/mid.bin"
assert_same_file "$T/dl/mid.bin" "$REPO/mid.bin"
assert_no_file "$T/dl/mid.bin.part"

step "--resume without a .part pulls the whole file"
rm -f "$T/dl/mid.bin"
ok ph get --resume mid.bin "$T/dl/mid.bin"
assert_same_file "$T/dl/mid.bin" "$REPO/mid.bin"

step "a corrupted prefix: the digest fails once, one retry from the start"
# (Against a host without REVERIFY this is exit 7: see digest.sh.)
rm -f "$T/dl/mid.bin"
head -c 5000000 "$REPO/mid.bin" >"$T/dl/mid.bin.part"
printf '\xff\x00\xff\x00' | dd of="$T/dl/mid.bin.part" bs=1 seek=1234567 conv=notrunc status=none
ok ph get --resume mid.bin "$T/dl/mid.bin"
assert_err_has "SHA-256 mismatch"
assert_err_has "retrying once from the start"
assert_same_file "$T/dl/mid.bin" "$REPO/mid.bin"
assert_no_file "$T/dl/mid.bin.part"
rm -f "$T/dl/mid.bin"

step "a .part longer than the file: remote BAD_OFFSET (1), no final file"
cp "$REPO/mid.bin" "$T/dl/mid.bin.part"
echo extra >>"$T/dl/mid.bin.part"
expect_rc 1 ph get --resume mid.bin "$T/dl/mid.bin"
assert_no_file "$T/dl/mid.bin"
assert_file_has "$DLOG" "op=GET path=/mid.bin result=BAD_OFFSET"
rm -f "$T/dl/mid.bin.part"

step "without --resume a stale .part is discarded"
mkrand "$T/dl/mid.bin.part" 3M
ok ph get mid.bin "$T/dl/mid.bin"
assert_same_file "$T/dl/mid.bin" "$REPO/mid.bin"
assert_no_file "$T/dl/mid.bin.part"

step "kill -9 a real pull of 1 GiB part way"
"$PORTHOLE" -e "unix:$SOCK" get -q --no-zstd big.bin "$T/dl/big.bin" \
    </dev/null >"$T/pull1.out" 2>&1 &
pull=$!
track "$pull"
# Stop the client once it has written something, so the kill lands mid-way
# however fast the machine is.
part_started() { [[ $(fsize "$T/dl/big.bin.part") -gt 0 ]]; }
wait_for 60 part_started || fail "no .part appeared within 60s"
kill -STOP "$pull"
got=$(fsize "$T/dl/big.bin.part")
((got < 1073741824)) || fail "the pull finished before it could be interrupted"
kill -KILL "$pull"
kill -CONT "$pull" 2>/dev/null
wait "$pull" 2>/dev/null
assert_no_file "$T/dl/big.bin"
[[ -f $T/dl/big.bin.part ]] || fail "the .part vanished after kill -9"
echo "interrupted at $(fsize "$T/dl/big.bin.part") bytes"

step "the daemon survived the dropped client"
daemon_serving

step "resume the killed pull"
ok ph get --resume big.bin "$T/dl/big.bin"
assert_same_file "$T/dl/big.bin" "$REPO/big.bin"
assert_no_file "$T/dl/big.bin.part"
assert_verified_line "$T/dl/big.bin" "$(sha_of "$REPO/big.bin")" 1073741824

step "the file changes on the host during a pull: integrity failure (7), no final file"
"$PORTHOLE" -e "unix:$SOCK" get -q --no-zstd changing.bin "$T/dl/changing.bin" \
    </dev/null >"$T/pull2.out" 2>&1 &
pull=$!
track "$pull"
changing_started() { [[ $(fsize "$T/dl/changing.bin.part") -gt 0 ]]; }
wait_for 60 changing_started || fail "no .part appeared within 60s"
kill -STOP "$pull"
# Overwrite the last MiB in place: same inode, same size, new bytes and mtime.
head -c 1M /dev/urandom | dd of="$REPO/changing.bin" bs=1M seek=63 conv=notrunc status=none
kill -CONT "$pull"
rc=0
wait "$pull" || rc=$?
[[ $rc == 7 ]] || fail "a pull of a file that changed mid-way exited $rc, expected 7: $(cat "$T/pull2.out")"
assert_no_file "$T/dl/changing.bin"
daemon_serving

daemon_stop

step "a .part that takes longer to hash than the daemon's request timeout"
# The client hashes the .part before it connects: the daemon gives a new
# connection one second for its first request here, and reading 3 GiB takes
# longer than that. Sparse, so the bytes cost no disk.
truncate -s 4G "$REPO/huge.bin"
head -c 1M /dev/urandom | dd of="$REPO/huge.bin" bs=1M seek=4095 conv=notrunc status=none
truncate -s 3G "$T/dl/huge.bin.part"
daemon_start --request-timeout 1
ok ph get --resume --no-zstd huge.bin "$T/dl/huge.bin"
# porthole checked the SHA-256 of all 4 GiB; the size and the random tail
# are checked here without reading 8 GiB again.
assert_verified_line "$T/dl/huge.bin" "$(sha_of "$REPO/huge.bin")" 4294967296
cmp <(tail -c 1048576 "$T/dl/huge.bin") <(tail -c 1048576 "$REPO/huge.bin") ||
    fail "the last MiB of huge.bin differs"
assert_no_file "$T/dl/huge.bin.part"
assert_file_has "$DLOG" "op=GET path=/huge.bin result=OK bytes=1073741824 " \
    "the daemon did not log a resumed GET of the last GiB"
rm -f "$T/dl/huge.bin" "$REPO/huge.bin"
daemon_stop
pass
