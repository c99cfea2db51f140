#!/usr/bin/env bash
# Every way out of the repository is refused: '..' in all its forms,
# symlinks to files and directories outside, FIFOs and sockets. Bad paths
# are usage errors; "%2e%2e" is just a name. Checked both through the client
# and with raw frames, so a client-side check cannot hide a daemon bug.
. "$(dirname "$0")/lib.sh"

step "create the repository and a secret outside it"
mkdir -p "$T/outside" "$REPO/a/b" "$REPO/%2e%2e"
echo secret >"$T/outside/secret"
echo inside >"$REPO/a/b/f"
echo top >"$REPO/f"
echo encoded >"$REPO/%2e%2e/x"
echo encoded-name >"$REPO/%2e%2e.txt"
ln -s /etc/passwd "$REPO/passwd-link"
ln -s "$T/outside" "$REPO/out-dir"
ln -s ../outside/secret "$REPO/rel-link"
ln -s ../../../outside/secret "$REPO/a/b/deep-link"
mkfifo "$REPO/fifo"
python3 -c 'import socket, sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])' \
    "$REPO/sock" || fail "cannot create a socket file"
mkdir -p "$T/dl"
cd "$T/dl" || fail "cd"

daemon_start

# Every refused pull must leave nothing behind in the download dir.
assert_dl_empty() {
	local left
	left=$(find "$T/dl" -mindepth 1 | head -n 5)
	[[ -z $left ]] || fail "files left in the download dir: $left"
}

step "'..' forms: exit 4"
for p in .. ../ /.. /../etc/passwd ../etc/passwd a/../../x a/b/../../../outside/secret \
    /a/./b/../../../etc/passwd ../../../../../../../../etc/passwd; do
	expect_rc 4 timeout 20 "$PORTHOLE" -e "unix:$SOCK" get "$p" "$T/dl/"
	expect_rc 4 timeout 20 "$PORTHOLE" -e "unix:$SOCK" stat "$p"
done
for p in .. /../ a/../.. ../outside; do
	expect_rc 4 timeout 20 "$PORTHOLE" -e "unix:$SOCK" ls "$p"
done
assert_dl_empty

step "'..' that stays inside is fine"
ok ph get a/../f "$T/dl/f1"
assert_same_file "$T/dl/f1" "$REPO/f"
ok ph get /a/b/../../a/./b//f "$T/dl/f2"
assert_same_file "$T/dl/f2" "$REPO/a/b/f"
ok ph stat a/..
rm -f "$T/dl/f1" "$T/dl/f2"

step "symlink to /etc/passwd: exit 4"
expect_rc 4 ph get passwd-link "$T/dl/"
expect_rc 4 ph stat passwd-link
assert_dl_empty

step "relative symlinks climbing out: exit 4"
expect_rc 4 ph get rel-link "$T/dl/"
expect_rc 4 ph get a/b/deep-link "$T/dl/"
assert_dl_empty

step "symlink to a directory outside: get and ls through it, exit 4"
expect_rc 4 ph get out-dir/secret "$T/dl/"
expect_rc 4 ph stat out-dir/secret
expect_rc 4 ph ls out-dir
expect_rc 4 ph ls -l out-dir/
expect_rc 4 ph ls --json out-dir
assert_file_lacks "$OUT" secret "ls through the link showed the outside dir"
assert_dl_empty

step "FIFO and unix socket in the repository: not served, exit 3"
expect_rc 3 timeout 20 "$PORTHOLE" -e "unix:$SOCK" get fifo "$T/dl/"
expect_rc 3 timeout 20 "$PORTHOLE" -e "unix:$SOCK" get sock "$T/dl/"
assert_dl_empty

step "bad paths: exit 2"
long=$(printf 'a%.0s' {1..5000})
for p in $'a\x01b' $'new\nline' $'del\x7f' $'\xff\xfe' $'\xc0\xaf' "$long"; do
	expect_rc 2 ph get "$p" "$T/dl/"
	expect_rc 2 ph stat "$p"
done
assert_dl_empty

step "'%2e%2e' is an ordinary name"
ok ph get %2e%2e/x "$T/dl/x"
assert_same_file "$T/dl/x" "$REPO/%2e%2e/x"
ok ph get /%2e%2e.txt "$T/dl/"
assert_same_file "$T/dl/%2e%2e.txt" "$REPO/%2e%2e.txt"
expect_rc 3 ph get %2e%2e/%2e%2e/etc/passwd "$T/dl/"
ok ph ls %2e%2e
assert_out_has x
rm -f "$T/dl/x" "$T/dl/%2e%2e.txt"

step "raw GETs straight to the daemon: ERROR with the right code, connection stays open"
# code 4 = PATH_ESCAPE, 3 = BAD_PATH, 5 = NOT_FOUND, 7 = NOT_FILE
check_raw_get() {	# path expected-error-code
	raw 3 "$(hello_hex)" "$(get_hex "$1")" "$(ping_hex 7)"
	grep -q '^frame type=0x81 ' "$OUT" || fail "no HELLO_ACK for raw GET $1$(last_run)"
	grep -qx "error code=$2 msg=.*" "$OUT" ||
		fail "raw GET '$1': expected ERROR code $2$(last_run)"
	grep -qx 'pong nonce=7' "$OUT" ||
		fail "raw GET '$1': the connection did not keep serving after the error$(last_run)"
	grep -qx 'open' "$OUT" || fail "raw GET '$1': the daemon closed the connection$(last_run)"
}
check_raw_get ../etc/passwd 4
check_raw_get /../../etc/shadow 4
check_raw_get a/../../x 4
check_raw_get passwd-link 4
check_raw_get out-dir/secret 4
check_raw_get rel-link 4
check_raw_get $'a\x01b' 3
check_raw_get $'\xff' 3
check_raw_get %2e%2e/%2e%2e/etc/passwd 5
check_raw_get fifo 7
check_raw_get sock 7
check_raw_get a 7

step "the daemon logged the refusals"
assert_file_has "$DLOG" "result=PATH_ESCAPE"
daemon_serving

daemon_stop
pass
