#!/usr/bin/env bash
# portholectl and the repository setting: persistence across a restart,
# `repo set` taking effect at once, bad paths, an unreachable daemon, the
# control socket's mode, and a daemon started without any repository.
. "$(dirname "$0")/lib.sh"

step "create two repositories"
echo one >"$REPO/only-in-one.txt"
echo shared-1 >"$REPO/common.txt"
REPO2=$T/repo2
mkdir -p "$REPO2/sub"
echo two >"$REPO2/only-in-two.txt"
echo shared-2 >"$REPO2/common.txt"
echo not-a-dir >"$T/plain-file"

step "no command: usage error (2)"
expect_rc 2 "$PORTHOLECTL" -s "$CTL"

step "daemon not running: exit 3 with the message"
expect_rc 3 phctl status
assert_err_has "portholectl: cannot connect to $CTL: "
assert_err_has "(is portholed running?)"
expect_rc 3 phctl repo get

step "start with -r; the control socket is mode 0600"
daemon_start
[[ -S $CTL ]] || fail "no control socket at $CTL"
assert_eq "$(stat -c %a "$CTL")" 600 "mode of the control socket"

step "status"
ok phctl status
assert_out_has "$REPO"
assert_out_has "unix:$SOCK"
assert_out_has 0.1.0
ok phctl --json status
jcheck "$OUT" "len(docs) == 1 and isinstance(docs[0], dict)"
jcheck "$OUT" "'$REPO' in allv"

step "repo get"
ok phctl repo get
assert_eq "$(cat "$OUT")" "$REPO" "repo get"
ok phctl --json repo get
jcheck "$OUT" "'$REPO' in allv"

step "repo ls"
ok phctl repo ls
assert_out_has only-in-one.txt
assert_out_has common.txt
ok phctl repo ls /
assert_out_has only-in-one.txt

step "restart without -r: the repository comes from the state DB"
daemon_stop
daemon_start --no-repo
ok phctl repo get
assert_eq "$(cat "$OUT")" "$REPO" "repo get after a restart"
ok ph get only-in-one.txt "$T/one.txt"
assert_same_file "$T/one.txt" "$REPO/only-in-one.txt"

step "repo set takes effect without a restart (relative path made absolute)"
ok bash -c 'cd "$1" && shift && exec "$@"' _ "$T" "$PORTHOLECTL" -s "$CTL" repo set repo2
ok phctl repo get
assert_eq "$(cat "$OUT")" "$REPO2" "repo get after repo set"
ok ph get only-in-two.txt "$T/two.txt"
assert_same_file "$T/two.txt" "$REPO2/only-in-two.txt"
ok ph get common.txt "$T/common.txt"
assert_same_file "$T/common.txt" "$REPO2/common.txt"
expect_rc 3 ph get only-in-one.txt "$T/"
ok phctl status
assert_out_has "$REPO2"

step "repo set to a regular file: exit 1, clear error, nothing changes"
expect_rc 1 phctl repo set "$T/plain-file"
[[ -s $ERR ]] || fail "no error message on stderr$(last_run)"
grep -qi 'director' "$ERR" || fail "the error does not say it is not a directory$(last_run)"
ok phctl repo get
assert_eq "$(cat "$OUT")" "$REPO2" "repo get after a refused repo set"

step "repo set to a missing path: exit 1, clear error"
expect_rc 1 phctl repo set "$T/does-not-exist"
[[ -s $ERR ]] || fail "no error message on stderr$(last_run)"
grep -qiE 'no such|not found|does not exist|exist' "$ERR" ||
    fail "the error does not say the path is missing$(last_run)"
ok phctl repo get
assert_eq "$(cat "$OUT")" "$REPO2" "repo get after a refused repo set"
ok ph get only-in-two.txt "$T/two-again.txt"

step "SIGHUP reloads from the state DB and keeps serving"
kill -HUP "$DAEMON_PID"
sleep 0.5
daemon_serving
ok phctl repo get
assert_eq "$(cat "$OUT")" "$REPO2" "repo get after SIGHUP"

step "restart keeps the repository set over the control socket"
daemon_stop
daemon_start --no-repo
ok phctl repo get
assert_eq "$(cat "$OUT")" "$REPO2" "repo get after repo set and a restart"
assert_eq "$(stat -c %a "$CTL")" 600 "mode of the control socket after a restart"

step "-r on the command line replaces the saved repository"
daemon_stop
daemon_start
ok phctl repo get
assert_eq "$(cat "$OUT")" "$REPO" "repo get after a restart with -r"
daemon_stop

step "a fresh state dir and no -r: the daemon starts and answers UNAVAILABLE (6)"
STATE=$T/state-empty
mkdir -p "$STATE"
daemon_start --no-repo
expect_rc 6 ph get only-in-one.txt "$T/"
assert_no_file "$T/only-in-one.txt"
ok phctl repo set "$REPO"
ok ph get only-in-one.txt "$T/late.txt"
assert_same_file "$T/late.txt" "$REPO/only-in-one.txt"

step "several requests on one control connection"
printf -v hexargs '%s%s' "$(hex_str repo)" "$(hex_str get)"
req=$(frame 10 "00$(printf '%04x' 2)$hexargs")
RAW_SOCK=$CTL raw 3 "$req" "$req"
n=$(grep -c '^frame type=0x90 ' "$OUT")
assert_eq "$n" 2 "CTL_REPLY frames for two requests on one connection"

daemon_stop
pass
