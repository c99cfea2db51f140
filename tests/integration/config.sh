#!/usr/bin/env bash
# The configuration file (--config): settings taken from it, the command
# line overriding it, --check-config with the file's errors and their line
# numbers; readiness and status sent to NOTIFY_SOCKET; and socket
# activation through systemd-socket-activate. Every daemon here listens on
# unix sockets only (an explicit listener is always given).
. "$(dirname "$0")/lib.sh"

CONF=$T/portholed.conf
REPO2=$T/repo2
mkdir -p "$REPO2"
echo "from the file's repository" >"$REPO/a.txt"
echo "from the command line's repository" >"$REPO2/a.txt"

# Starts portholed with exactly the given arguments and waits until it
# answers ping on the unix socket PATH (the first argument).
cfg_start() {
	local sock=$1 i
	shift
	[[ -z $DAEMON_PID ]] || fail "cfg_start: a daemon is already running"
	DAEMON_RUNS=$((DAEMON_RUNS + 1))
	echo "#### daemon run $DAEMON_RUNS: portholed $*" >>"$DLOG"
	"$PORTHOLED" "$@" </dev/null >>"$DLOG" 2>&1 &
	DAEMON_PID=$!
	for ((i = 0; i < START_TIMEOUT * 10; i++)); do
		daemon_alive || fail "portholed exited during startup"
		if [[ -S $sock ]] &&
		    "$PORTHOLE" -e "unix:$sock" ping >/dev/null 2>&1 </dev/null; then
			return 0
		fi
		sleep 0.1
	done
	fail "portholed did not answer ping on $sock within ${START_TIMEOUT}s"
}

step "a configuration file sets every kind of option"
cat >"$CONF" <<EOC
# A comment, then a blank line.

[daemon]
listen = unix:$SOCK
listen = unix:$T/second.sock
repo = $REPO
control = $CTL
state-dir = $STATE
cache-dir = $CACHE
shutdown-grace = 5
verbose = yes

[queue]
max-active = 2
max-queue = 17
max-per-peer = 3
quantum-bytes = 1048576
quantum-ms = 250

[limits]
request-timeout = 4
idle-timeout = 60
stall-timeout = 9
max-conns-per-peer = 5
EOC
ok "$PORTHOLED" --config "$CONF" --check-config
assert_out_has "configuration OK"

step "the daemon serves the file's repository on the file's listeners"
cfg_start "$SOCK" --config "$CONF"
ok ph get a.txt "$T/got1.txt"
assert_same_file "$T/got1.txt" "$REPO/a.txt"
ok "$PORTHOLE" -e "unix:$T/second.sock" get a.txt "$T/got2.txt"
assert_same_file "$T/got2.txt" "$REPO/a.txt"
ok phctl repo get
assert_eq "$(cat "$OUT")" "$REPO" "repository from the file"
# verbose = yes: the debug lines show the file's queue and timeouts.
assert_file_has "$DLOG" "transfers: 2 at once, 17 waiting, 3 per client, slices of 1048576 bytes or 250 ms; timeouts: request 4000 ms, idle 60000 ms, stall 9000 ms; 5 connections per client"
assert_file_has "$DLOG" "shutdown grace 5 s"
daemon_stop

step "the command line overrides the file; its --listen replaces the file's"
rm -f "$T/second.sock"
OTHER=$T/other.sock
cfg_start "$OTHER" --config "$CONF" -l "unix:$OTHER" -r "$REPO2" \
    --max-active 3 --idle-timeout 61
[[ ! -e $SOCK && ! -e $T/second.sock ]] ||
	fail "the file's listeners were opened although --listen was given"
ok "$PORTHOLE" -e "unix:$OTHER" get a.txt "$T/got3.txt"
assert_same_file "$T/got3.txt" "$REPO2/a.txt"
assert_file_has "$DLOG" "transfers: 3 at once, 17 waiting, 3 per client"
assert_file_has "$DLOG" "idle 61000 ms"
daemon_stop

step "--check-config: an unknown key names file, line and section"
printf '[daemon]\n# comment\nlisten = unix:%s\nfoo = 1\n' "$SOCK" >"$T/bad.conf"
expect_rc 1 "$PORTHOLED" --config "$T/bad.conf" --check-config
assert_err_has "portholed: $T/bad.conf:4: unknown key \"foo\" in [daemon]"
# A known key in the wrong section is unknown there.
printf '[limits]\nmax-active = 2\n' >"$T/bad.conf"
expect_rc 1 "$PORTHOLED" --config "$T/bad.conf" -n
assert_err_has "$T/bad.conf:2: unknown key \"max-active\" in [limits]"

step "--check-config: bad values with their line numbers"
printf '[queue]\nmax-active = 2\n\nmax-queue = lots\n' >"$T/bad.conf"
expect_rc 1 "$PORTHOLED" --config "$T/bad.conf" -n
assert_err_has "portholed: $T/bad.conf:4: invalid max-queue 'lots' (0 to 1000000)"
printf '[queue]\nmax-active = 0\n' >"$T/bad.conf"
expect_rc 1 "$PORTHOLED" --config "$T/bad.conf" -n
assert_err_has "$T/bad.conf:2: invalid max-active '0' (1 to 4096)"
printf '[limits]\nidle-timeout = -5\n' >"$T/bad.conf"
expect_rc 1 "$PORTHOLED" --config "$T/bad.conf" -n
assert_err_has "$T/bad.conf:2: invalid idle-timeout '-5' (seconds, 1 to 86400)"
printf '[daemon]\nshutdown-grace = 86401\n' >"$T/bad.conf"
expect_rc 1 "$PORTHOLED" --config "$T/bad.conf" -n
assert_err_has "$T/bad.conf:2: invalid shutdown-grace '86401' (seconds, 0 to 86400)"
printf '[daemon]\nlisten = tcp:1.2.3.4\n' >"$T/bad.conf"
expect_rc 1 "$PORTHOLED" --config "$T/bad.conf" -n
assert_err_has "$T/bad.conf:2: invalid endpoint 'tcp:1.2.3.4'"
printf '[daemon]\nverbose = maybe\n' >"$T/bad.conf"
expect_rc 1 "$PORTHOLED" --config "$T/bad.conf" -n
assert_err_has "$T/bad.conf:2: invalid verbose 'maybe' (yes or no)"
printf '[daemon]\nrepo =\n' >"$T/bad.conf"
expect_rc 1 "$PORTHOLED" --config "$T/bad.conf" -n
assert_err_has "$T/bad.conf:2: empty repository path"

step "--check-config: syntax errors, unknown sections, keys outside one"
printf '[daemon]\nverbose = no\nthis is not ini\n' >"$T/bad.conf"
expect_rc 1 "$PORTHOLED" --config "$T/bad.conf" -n
assert_err_has "$T/bad.conf:3: syntax error"
printf '[daemon]\n[network]\nport = 1\n' >"$T/bad.conf"
expect_rc 1 "$PORTHOLED" --config "$T/bad.conf" -n
assert_err_has "$T/bad.conf:3: unknown section [network]"
printf 'verbose = yes\n' >"$T/bad.conf"
expect_rc 1 "$PORTHOLED" --config "$T/bad.conf" -n
assert_err_has "$T/bad.conf:1: key \"verbose\" outside any section"
{ printf '[daemon]\nrepo = /'; head -c 300 /dev/zero | tr '\0' a; printf '\n'; } >"$T/bad.conf"
expect_rc 1 "$PORTHOLED" --config "$T/bad.conf" -n
assert_err_has "$T/bad.conf:2: line too long"

step "a bad file stops the daemon too (exit 1, nothing created)"
printf '[daemon]\nlisten = unix:%s\nfoo = 1\n' "$T/never.sock" >"$T/bad.conf"
expect_rc 1 timeout 20 "$PORTHOLED" --config "$T/bad.conf"
assert_err_has "$T/bad.conf:3: unknown key \"foo\" in [daemon]"
assert_no_file "$T/never.sock"

step "a missing explicit file is an error; a bad command line is still 2"
expect_rc 1 "$PORTHOLED" --config "$T/no-such.conf" -n
assert_err_has "portholed: cannot read $T/no-such.conf: No such file or directory"
expect_rc 2 "$PORTHOLED" --config "$CONF" --max-active 0 -n
assert_err_has "invalid --max-active '0' (1 to 4096)"
expect_rc 2 "$PORTHOLED" --config "$CONF" --listen bogus -n
expect_rc 2 "$PORTHOLED" --config
expect_rc 1 "$PORTHOLED" --config "$CONF" -r "$T/no-such-repo" -n
assert_err_has "no-such-repo"

step "NOTIFY_SOCKET: READY=1, STATUS= with the requests served, STOPPING=1"
NOTES=$T/notify.log
python3 "$LIB_DIR/notify_listen.py" "$T/notify.sock" "$NOTES" 120 &
NOTIFY_PID=$!
track "$NOTIFY_PID"
wait_for 10 test -e "$NOTES.ready" || fail "the notify listener did not start"
NOTIFY_SOCKET=$T/notify.sock cfg_start "$SOCK" --config "$CONF" \
    -l "unix:$SOCK"
wait_for 10 grep -q "READY=1" "$NOTES" || fail "no READY=1: $(cat "$NOTES")"
assert_file_has "$NOTES" "STATUS=serving; 0 requests"
ok ph get a.txt "$T/got4.txt"
ok ph stat a.txt
# The status is updated at most once a second, only when it changed;
# cfg_start's ping was the first request.
wait_for 10 grep -q "STATUS=serving; 3 requests" "$NOTES" ||
	fail "no STATUS= with 3 requests: $(cat "$NOTES")"
daemon_stop
wait_for 10 grep -q "STOPPING=1" "$NOTES" || fail "no STOPPING=1: $(cat "$NOTES")"

step "socket activation: the passed socket is served, with --listen as well"
command -v systemd-socket-activate >/dev/null 2>&1 ||
	fail "systemd-socket-activate not found; run scripts/install-deps.sh"
ACT=$T/act.sock
senv=()
for v in ASAN_OPTIONS UBSAN_OPTIONS LSAN_OPTIONS; do
	[[ -n ${!v:-} ]] && senv+=(-E "$v")
done
echo "#### daemon run (socket activation)" >>"$DLOG"
systemd-socket-activate -l "$ACT" "${senv[@]}" "$PORTHOLED" --config "$CONF" \
    -l "unix:$SOCK" </dev/null >>"$DLOG" 2>&1 &
DAEMON_PID=$!
wait_for 10 test -S "$ACT" || fail "systemd-socket-activate did not listen"
# The first connection starts portholed, which takes the socket over.
ok "$PORTHOLE" -e "unix:$ACT" get a.txt "$T/got5.txt"
assert_same_file "$T/got5.txt" "$REPO/a.txt"
ok "$PORTHOLE" -e "unix:$ACT" stat a.txt
wait_for 10 test -S "$SOCK" || fail "the --listen socket is missing"
ok ph get a.txt "$T/got6.txt"
assert_file_has "$DLOG" "listening on unix:$ACT, unix:$SOCK"
# Peers on the passed socket are still identified by accept().
grep -qE "peer=unix:uid=$(id -u),pid=[0-9]+ op=GET path=/a.txt" "$DLOG" ||
	fail "no GET log line with the peer's identity"
daemon_stop
# The passed socket's file belongs to whoever made it: left in place.
[[ -S $ACT ]] || fail "portholed removed the passed socket's file"

step "a passed descriptor that is not a listening socket is refused"
run env LISTEN_FDS=1 LISTEN_PID=$$ bash -c \
    'exec 3</dev/null; LISTEN_PID=$$ exec "$0" "$@"' "$PORTHOLED" \
    --config "$CONF" -l "unix:$T/refused.sock"
[[ $RC == 1 ]] || fail "expected exit 1$(last_run)"
assert_err_has "passed descriptor 3 is not a listening unix or vsock stream socket"
assert_no_file "$T/refused.sock"

pass
