#!/usr/bin/env bash
# Exit codes: usage (2), not found (3), connection (6), local I/O (8), and
# portholed's own startup and usage errors.
. "$(dirname "$0")/lib.sh"

echo content >"$REPO/f.txt"
mkdir -p "$REPO/dir" "$T/dl"

step "--help documents the exit codes"
ok "$PORTHOLE" --help
grep -qi 'exit' "$OUT" "$ERR" || fail "porthole --help does not mention exit codes$(last_run)"
ok "$PORTHOLED" --help
ok "$PORTHOLED" --version
assert_out_has 0.1.0

step "porthole usage errors: 2"
expect_rc 2 "$PORTHOLE"
expect_rc 2 "$PORTHOLE" -e "unix:$SOCK" frobnicate
expect_rc 2 "$PORTHOLE" -e "unix:$SOCK" get
expect_rc 2 "$PORTHOLE" -e "unix:$SOCK" get --no-such-option f.txt
expect_rc 2 "$PORTHOLE" -e "not-an-endpoint" ping

step "connection errors before the daemon exists: 6 (--wait 0: at once)"
expect_rc 6 ph --wait 0 ping
expect_rc 6 ph --wait 0 get f.txt "$T/dl/"
expect_rc 6 "$PORTHOLE" -e "unix:$T/no/such/dir/sock" --wait 0 ls /
# A socket file nobody listens on: ECONNREFUSED.
python3 -c 'import socket, sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])' "$T/dead.sock"
expect_rc 6 "$PORTHOLE" -e "unix:$T/dead.sock" --wait 0 ping
expect_rc 6 "$PORTHOLE" -e "unix:$T/dead.sock" get --wait 0 f.txt "$T/dl/"
assert_no_file "$T/dl/f.txt"

step "portholed usage and startup errors"
expect_rc 2 "$PORTHOLED" --no-such-option
expect_rc 2 "$PORTHOLED" -l not-an-endpoint -c "$T/c0.sock" --state-dir "$STATE" -r "$REPO"
# --check-config validates and exits without creating anything.
ok "$PORTHOLED" -n -l "unix:$T/n.sock" -c "$T/n.ctl" --state-dir "$T/n-state" \
    --cache-dir "$CACHE" -r "$REPO"
assert_no_file "$T/n.sock"
assert_no_file "$T/n.ctl"
expect_rc 1 "$PORTHOLED" -n -l "unix:$T/n.sock" -c "$T/n.ctl" --state-dir "$T/n-state" \
    --cache-dir "$CACHE" -r "$T/no-such-repo"
assert_err_has "no-such-repo"
expect_rc 1 timeout 20 "$PORTHOLED" -l "unix:$T/n.sock" -c "$T/n.ctl" --state-dir "$T/n-state" \
    --cache-dir "$CACHE" -r "$T/no-such-repo"
assert_err_has "no-such-repo"
expect_rc 1 "$PORTHOLED" -l "unix:$T/no/such/dir/ph.sock" -c "$T/c1.sock" \
    --state-dir "$STATE" --cache-dir "$CACHE" -r "$REPO"
[[ $(wc -l <"$ERR") -ge 1 ]] || fail "portholed gave no message for a startup error$(last_run)"

daemon_start

step "a second daemon on the same socket: startup error 1, the first keeps serving"
expect_rc 1 timeout 20 "$PORTHOLED" -l "unix:$SOCK" -c "$T/c2.sock" \
    --state-dir "$T/state2" --cache-dir "$CACHE" -r "$REPO"
daemon_serving

step "not found: 3"
expect_rc 3 ph get no-such.txt "$T/dl/"
assert_no_file "$T/dl/no-such.txt"
assert_no_file "$T/dl/no-such.txt.part"
expect_rc 3 ph stat /no/such/path
expect_rc 3 ph ls /no-such-dir
expect_rc 3 ph get dir "$T/dl/"
expect_rc 3 ph ls f.txt

step "local write failure: 8"
# The destination's parent is a regular file.
echo x >"$T/plain"
expect_rc 8 ph get f.txt "$T/plain/inside"
# A full device on stdout.
expect_rc 8 bash -c '"$@" >/dev/full' _ "$PORTHOLE" -e "unix:$SOCK" get -q f.txt -
# A read-only destination directory. Root ignores permission bits, so as
# root use a read-only mount in a private mount namespace.
mkdir -p "$T/ro"
if (($(id -u) != 0)); then
	chmod 0555 "$T/ro"
	expect_rc 8 ph get f.txt "$T/ro/"
	chmod 0755 "$T/ro"
elif unshare -m --propagation private \
    mount -t tmpfs -o ro,size=1m tmpfs "$T/ro" 2>/dev/null; then
	expect_rc 8 unshare -m --propagation private bash -c \
	    'mount -t tmpfs -o ro,size=1m tmpfs "$1" || exit 99; shift; exec "$@"' \
	    _ "$T/ro" "$PORTHOLE" -e "unix:$SOCK" get f.txt "$T/ro/"
else
	echo "note: no way to make a read-only directory as root here; skipped that case"
fi
assert_no_file "$T/ro/f.txt"

step "success still works"
ok ph get f.txt "$T/dl/"
assert_same_file "$T/dl/f.txt" "$REPO/f.txt"

step "the daemon stops; afterwards clients get 6 again"
daemon_stop
expect_rc 6 ph --wait 0 ping

pass
