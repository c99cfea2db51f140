#!/usr/bin/env bash
# Destinations that are not regular files. A device node or a FIFO at LOCAL
# is written into, like `-` (no .part, no rename, no sync), and stays what
# it was; a symlink at LOCAL is replaced by the file, as always. The nodes
# are made in $T (never the real /dev/null or /dev/full, which a bug would
# break for the whole machine): c 1 3 behaves as /dev/null, c 1 7 as
# /dev/full.
. "$(dirname "$0")/lib.sh"

SIZE=3145728	# three DATA frames
mkrand "$REPO/tools/a.deb" "$SIZE"
echo "second file" >"$REPO/docs.txt"
mkdir -p "$REPO/q"
# Big enough to fill any socket buffer, so a reader that stops stalls.
truncate -s 64M "$REPO/q/stall"
SUM=$(sha_of "$REPO/tools/a.deb")

# assert_node PATH TYPE MAJ:MIN MODE: still that kind of node, unchanged.
assert_node() {
	assert_eq "$(stat -c '%F %t:%T %a' "$1")" "$2 $3 $4" "what $1 is"
}

# reader PATH OUT [CMD...]: reads the FIFO PATH into OUT in the background
# (cat, or CMD); $READER is its pid. The command opens the FIFO itself, so
# that cleanup can kill it even while it waits for a writer that never
# comes (when porthole replaced the FIFO).
reader() {
	local fifo=$1 out=$2
	shift 2
	(($# > 0)) || set -- cat
	"$@" "$fifo" >"$out" 2>&1 &
	READER=$!
	track "$READER"
}

mknod "$T/null" c 1 3 && mknod "$T/full" c 1 7 ||
	fail "cannot make device nodes in $T (the tests run as root)"
chmod 0666 "$T/null" "$T/full"
daemon_start

step "a /dev/null-like node: verified, exit 0, still the same device"
ok ph get /tools/a.deb "$T/null"
assert_verified_line "$T/null" "$SUM" "$SIZE"
assert_node "$T/null" "character special file" 1:3 666
assert_no_file "$T/null.part"

step "again with --resume and --json: nothing to resume, the same result"
ok ph get --resume --json /tools/a.deb "$T/null"
jcheck "$OUT" "docs[0]['local'] == '$T/null' and docs[0]['sha256'] == '$SUM'"
assert_node "$T/null" "character special file" 1:3 666
assert_no_file "$T/null.part"

step "a /dev/full-like node: a clear write error, exit 8, still the device"
expect_rc 8 ph get /tools/a.deb "$T/full"
assert_err_has "porthole: $T/full: No space left on device"
assert_file_lacks "$ERR" verified
assert_node "$T/full" "character special file" 1:7 666
assert_no_file "$T/full.part"
daemon_serving

step "a FIFO: its reader gets the file's bytes, the FIFO stays"
mkfifo -m 0640 "$T/fifo"
reader "$T/fifo" "$T/fifo.got"
ok ph get /tools/a.deb "$T/fifo"
assert_node "$T/fifo" fifo 0:0 640
assert_no_file "$T/fifo.part"
wait "$READER" || fail "the FIFO's reader failed"
assert_same_file "$T/fifo.got" "$REPO/tools/a.deb"

step "a FIFO whose reader leaves early: exit 8, the FIFO stays"
reader "$T/fifo" "$T/fifo.head" head -c 1000
expect_rc 8 ph get /tools/a.deb "$T/fifo"
assert_err_has "porthole: $T/fifo: Broken pipe"
assert_node "$T/fifo" fifo 0:0 640
assert_no_file "$T/fifo.part"
wait "$READER" || fail "the FIFO's reader failed"
assert_eq "$(fsize "$T/fifo.head")" 1000 "bytes the early reader took"

step "several files into a directory: a node under one file's name"
mkdir "$T/in"
mknod "$T/in/a.deb" c 1 3
ok ph get /tools/a.deb /docs.txt "$T/in/"
assert_node "$T/in/a.deb" "character special file" 1:3 644
assert_same_file "$T/in/docs.txt" "$REPO/docs.txt"
assert_eq "$(ls "$T/in" | tr '\n' ' ')" "a.deb docs.txt " "files in $T/in"

step "a symlink to a device is replaced by the file; the device stays"
ln -s "$T/null" "$T/link"
ok ph get /tools/a.deb "$T/link"
[[ -f $T/link && ! -L $T/link ]] || fail "$T/link is not a regular file now"
assert_same_file "$T/link" "$REPO/tools/a.deb"
assert_node "$T/null" "character special file" 1:3 666

step "a regular file is still replaced through LOCAL.part"
echo old >"$T/plain"
ok ph get /tools/a.deb "$T/plain"
assert_same_file "$T/plain" "$REPO/tools/a.deb"
assert_no_file "$T/plain.part"

step "sync: a device at LOCAL is refused and left alone"
printf '/tools/a.deb %s 0600\n' "$T/null" >"$T/manifest"
expect_rc 8 ph sync "$T/manifest"
assert_out_has "failed $T/null: not a regular file"
assert_node "$T/null" "character special file" 1:3 666
daemon_stop

step "a node made at LOCAL during the download is not renamed over"
# A stalled reader holds the only slot for 3 s, so the pull waits in the
# queue with its LOCAL.part open while the node appears.
daemon_start --test-declared-peer --stall-timeout 3
hold_slot "$T/blocker.out"
RC=0
ph get /tools/a.deb "$T/late" >"$OUT" 2>"$ERR" &
GET=$!
track "$GET"
wait_for 10 test -f "$T/late.part" || fail "no $T/late.part while queued"
mknod "$T/late" c 1 3
wait "$GET" || RC=$?
assert_eq "$RC" 8 "exit status$(last_run)"
assert_err_has "porthole: $T/late: is no longer a regular file: left alone"
assert_node "$T/late" "character special file" 1:3 644
assert_no_file "$T/late.part"
wait "$HOLD_PID" || fail "the blocker failed: $(cat "$T/blocker.out")"

pass
