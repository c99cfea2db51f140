# Shared helpers for the integration tests. Source it first thing:
#
#   . "$(dirname "$0")/lib.sh"
#
# Each test gets its own temp dir ($T) with a repository ($REPO), a unix
# data socket ($SOCK), a control socket ($CTL) and a state dir. The daemon
# runs only on unix sockets in that dir; nothing here touches vsock.
# Everything the test started is killed and $T removed on exit.
#
# Environment (set by meson): PORTHOLED, PORTHOLE, PORTHOLECTL (executables),
# SRCDIR (source root).

set -u -o pipefail

: "${PORTHOLED:?PORTHOLED must point to the portholed executable}"
: "${PORTHOLE:?PORTHOLE must point to the porthole executable}"
: "${PORTHOLECTL:?PORTHOLECTL must point to the portholectl executable}"
: "${SRCDIR:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"

LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TEST_NAME=$(basename "$0" .sh)

# Seconds a SIGTERM'd daemon gets to exit (grace time plus sanitizer reports).
: "${STOP_TIMEOUT:=30}"
# Seconds the daemon gets to answer its first ping.
: "${START_TIMEOUT:=30}"

T=$(mktemp -d "${TMPDIR:-/tmp}/porthole-it-$TEST_NAME.XXXXXX") ||
	{ echo "FAIL: cannot create a temp dir" >&2; exit 1; }
REPO=$T/repo
SOCK=$T/ph.sock
CTL=$T/ctl.sock
STATE=$T/state
CACHE=$T/cache
DLOG=$T/daemon.log
mkdir -p "$REPO" "$STATE" "$CACHE"

# The client never falls back to its vsock default, even if a test forgets -e.
export PORTHOLE_ENDPOINT="unix:$SOCK"

DAEMON_PID=
DAEMON_RUNS=0
BG_PIDS=()
CLEANUP_HOOKS=()
TEST_DONE=0
STEP=

# ---- reporting ----------------------------------------------------------

# Prints a progress line for the test log.
step() {
	STEP=$*
	printf '== %s\n' "$*"
}

# Shows the end of the daemon log, which is where most failures explain
# themselves.
show_daemon_log() {
	if [[ -s $DLOG ]]; then
		echo "---- daemon log (last 40 lines) ----" >&2
		tail -n 40 "$DLOG" >&2
		echo "------------------------------------" >&2
	fi
}

# Fails the test at once with a message.
fail() {
	printf 'FAIL: %s%s\n' "${STEP:+[$STEP] }" "$*" >&2
	show_daemon_log
	exit 1
}

# ---- cleanup ------------------------------------------------------------

# Kills whatever is still running and removes the temp dir.
cleanup() {
	local rc=$? p h
	trap - EXIT INT TERM
	for h in "${CLEANUP_HOOKS[@]}"; do
		eval "$h" || true
	done
	for p in "${BG_PIDS[@]}"; do
		kill -KILL "$p" 2>/dev/null || true
		kill -CONT "$p" 2>/dev/null || true
	done
	if [[ -n $DAEMON_PID ]]; then
		kill -KILL "$DAEMON_PID" 2>/dev/null || true
		wait "$DAEMON_PID" 2>/dev/null || true
	fi
	if ((rc == 0 && TEST_DONE == 0)); then
		echo "FAIL: the test exited before calling pass" >&2
		rc=1
	fi
	if [[ -n ${KEEP_TMP:-} ]]; then
		echo "temp dir kept: $T" >&2
	else
		chmod -R u+w "$T" 2>/dev/null || true
		rm -rf "$T"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Registers a shell command run at cleanup, before processes are killed.
on_cleanup() {
	CLEANUP_HOOKS+=("$1")
}

# Remembers a background pid so cleanup kills it.
track() {
	BG_PIDS+=("$1")
}

# Ends the test successfully; the daemon must already have been stopped
# (a test that leaves it running did not check its exit status).
pass() {
	if [[ -n $DAEMON_PID ]]; then
		daemon_stop
	fi
	TEST_DONE=1
	echo "PASS: $TEST_NAME"
	exit 0
}

# ---- running commands ---------------------------------------------------

# Runs a command, capturing stdout in $OUT, stderr in $ERR (files) and the
# exit status in $RC. Never fails by itself.
OUT=$T/out
ERR=$T/err
RC=0
run() {
	RC=0
	"$@" >"$OUT" 2>"$ERR" </dev/null || RC=$?
}

# Describes the last run for failure messages.
last_run() {
	printf '\n  exit: %s\n  stdout: %s\n  stderr: %s' "$RC" \
	    "$(head -c 2000 "$OUT")" "$(head -c 2000 "$ERR")"
}

# expect_rc N CMD...: runs CMD and fails unless it exits with N.
expect_rc() {
	local want=$1
	shift
	run "$@"
	if [[ $RC != "$want" ]]; then
		fail "expected exit $want from: $*$(last_run)"
	fi
}

# ok CMD...: runs CMD and fails unless it exits 0.
ok() {
	expect_rc 0 "$@"
}

# The client and admin CLI bound to this test's sockets.
ph() {
	"$PORTHOLE" -e "unix:$SOCK" "$@"
}
phctl() {
	"$PORTHOLECTL" -s "$CTL" "$@"
}

# ---- asserts ------------------------------------------------------------

assert_eq() {		# actual expected message
	[[ $1 == "$2" ]] || fail "$3: expected '$2', got '$1'"
}

assert_same_file() {	# got want
	[[ -f $1 ]] || fail "missing file $1"
	cmp -s "$1" "$2" || fail "$1 differs from $2 ($(cmp "$1" "$2" 2>&1 | head -n 1))"
	local a b
	a=$(sha256sum <"$1" | cut -d' ' -f1)
	b=$(sha256sum <"$2" | cut -d' ' -f1)
	[[ $a == "$b" ]] || fail "sha256 of $1 is $a, expected $b"
}

assert_no_file() {
	[[ ! -e $1 && ! -L $1 ]] || fail "$1 exists but must not"
}

assert_file_has() {	# file fixed-string [message]
	grep -qF -- "$2" "$1" ||
		fail "${3:-$1 lacks '$2'}: $(head -c 2000 "$1")"
}

assert_file_lacks() {	# file fixed-string [message]
	! grep -qF -- "$2" "$1" ||
		fail "${3:-$1 contains '$2'}: $(grep -F -- "$2" "$1" | head -n 3)"
}

assert_out_has() { assert_file_has "$OUT" "$1" "stdout lacks '$1'$(last_run)"; }
assert_err_has() { assert_file_has "$ERR" "$1" "stderr lacks '$1'$(last_run)"; }

# The SHA-256 of a file in lowercase hex.
sha_of() {
	sha256sum <"$1" | cut -d' ' -f1
}

# Checks the `verified sha256:<hex>  <local> (<bytes> bytes, ...)` line
# for a pulled file in the last run's stderr.
assert_verified_line() {	# local-path expected-hex size
	grep -qE -- "^verified sha256:$2  $(re_quote "$1") \($3 bytes, " "$ERR" ||
		fail "no verified line for $1 (sha256:$2, $3 bytes)$(last_run)"
}

# Escapes a string for use inside an extended regex.
re_quote() {
	printf '%s' "$1" | sed 's/[][\.*^$+?(){}|/]/\\&/g'
}

# Validates JSON output with python3: jcheck FILE 'python expression over
# `docs` (a list of the JSON values found: the whole text, or one per
# line)'. Fails with the expression and the text when it is false.
jcheck() {
	local file=$1 expr=$2
	python3 - "$file" "$expr" <<'EOF' || fail "JSON check failed: $expr: $(head -c 2000 "$file")"
import json, sys
text = open(sys.argv[1], encoding="utf-8").read()
try:
    docs = [json.loads(text)]
except ValueError:
    docs = [json.loads(l) for l in text.splitlines() if l.strip()]
def values(x):
    """Every scalar in a JSON value, recursively."""
    if isinstance(x, dict):
        for v in x.values():
            yield from values(v)
    elif isinstance(x, list):
        for v in x:
            yield from values(v)
    else:
        yield x
def field(x, key):
    """Every value stored under key, recursively."""
    if isinstance(x, dict):
        for k, v in x.items():
            if k == key:
                yield v
            yield from field(v, key)
    elif isinstance(x, list):
        for v in x:
            yield from field(v, key)
allv = [v for d in docs for v in values(d)]
ok = eval(sys.argv[2])
sys.exit(0 if ok else 1)
EOF
}

# ---- files --------------------------------------------------------------

# mkrand FILE SIZE: SIZE bytes of random data (SIZE as head -c takes it).
mkrand() {
	mkdir -p "$(dirname "$1")"
	head -c "$2" /dev/urandom >"$1" || fail "cannot create $1"
}

# mktext FILE MIB: a text file that zstd shrinks a lot, MIB MiB.
mktext() {
	mkdir -p "$(dirname "$1")"
	python3 - "$1" "$2" <<'EOF_MKTEXT' || fail "cannot create $1"
import random, sys
words = "porthole vsock guest host cache blob digest frame queue relay".split()
rng = random.Random(7)
with open(sys.argv[1], "w") as f:
    n = 0
    while n < int(sys.argv[2]) * 1048576:
        line = " ".join(rng.choice(words) for _ in range(12)) + "\n"
        f.write(line)
        n += len(line)
EOF_MKTEXT
}

# Size of a file in bytes, 0 if missing.
fsize() {
	stat -c %s "$1" 2>/dev/null || echo 0
}

# wait_for SECONDS CONDITION...: polls until the command succeeds.
wait_for() {
	local limit=$1 i
	shift
	for ((i = 0; i < limit * 20; i++)); do
		"$@" && return 0
		sleep 0.05
	done
	return 1
}

# ---- the daemon ---------------------------------------------------------

# Starts portholed on $SOCK/$CTL with $STATE, repository $REPO unless
# --no-repo is the first argument; other arguments are passed on. Waits
# until `porthole ping` answers.
daemon_start() {
	# A cache smaller than the multi-GiB sparse files some tests serve:
	# those go out uncached instead of being copied into $T.
	local args=(-l "unix:$SOCK" -c "$CTL" --state-dir "$STATE"
	    --cache-dir "$CACHE" --cache-size 256M)
	if [[ ${1:-} == --no-repo ]]; then
		shift
	else
		args+=(-r "$REPO")
	fi
	[[ -z $DAEMON_PID ]] || fail "daemon_start: a daemon is already running"
	DAEMON_RUNS=$((DAEMON_RUNS + 1))
	echo "#### daemon run $DAEMON_RUNS: portholed ${args[*]} $*" >>"$DLOG"
	"$PORTHOLED" "${args[@]}" "$@" </dev/null 2>>"$DLOG" >>"$DLOG" &
	DAEMON_PID=$!
	local i
	for ((i = 0; i < START_TIMEOUT * 10; i++)); do
		if ! kill -0 "$DAEMON_PID" 2>/dev/null; then
			local rc=0
			wait "$DAEMON_PID" || rc=$?
			DAEMON_PID=
			fail "portholed exited during startup with status $rc"
		fi
		if [[ -S $SOCK ]] &&
		    "$PORTHOLE" -e "unix:$SOCK" ping >/dev/null 2>&1 </dev/null; then
			return 0
		fi
		sleep 0.1
	done
	fail "portholed did not answer ping within ${START_TIMEOUT}s"
}

# parent_start: a plain portholed serving $REPO on unix:$L0 ($T/l0.sock),
# for a relay started with daemon_start to use as its parent; sets L0_PID.
parent_start() {
	L0=$T/l0.sock
	mkdir -p "$T/l0state" "$T/l0cache"
	"$PORTHOLED" -l "unix:$L0" -c "$T/l0.ctl" --state-dir "$T/l0state" \
	    --cache-dir "$T/l0cache" -r "$REPO" --libvirt none </dev/null \
	    >>"$T/l0.log" 2>&1 &
	L0_PID=$!
	track "$L0_PID"
	wait_for 20 "$PORTHOLE" -e "unix:$L0" ping ||
		fail "the parent daemon does not answer: $(cat "$T/l0.log")"
}

# parent_stop: stops it; it must exit 0 without a sanitizer report.
parent_stop() {
	kill -TERM "$L0_PID"
	wait "$L0_PID" || fail "the parent daemon exited with status $?"
	if grep -qE 'Sanitizer|runtime error:' "$T/l0.log"; then
		fail "sanitizer report in the parent daemon's log"
	fi
}

# True while the daemon process is alive.
daemon_alive() {
	[[ -n $DAEMON_PID ]] && kill -0 "$DAEMON_PID" 2>/dev/null
}

# Sends SIGNAL (default TERM) and waits for the daemon to exit; fails unless
# it exits 0 within $STOP_TIMEOUT seconds and without a sanitizer report.
daemon_stop() {
	local sig=${1:-TERM} i rc=0
	[[ -n $DAEMON_PID ]] || fail "daemon_stop: no daemon running"
	kill -"$sig" "$DAEMON_PID" 2>/dev/null ||
		fail "daemon_stop: portholed (pid $DAEMON_PID) was already gone"
	for ((i = 0; i < STOP_TIMEOUT * 10; i++)); do
		kill -0 "$DAEMON_PID" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$DAEMON_PID" 2>/dev/null; then
		kill -KILL "$DAEMON_PID" 2>/dev/null
		wait "$DAEMON_PID" 2>/dev/null
		DAEMON_PID=
		fail "portholed did not exit within ${STOP_TIMEOUT}s of SIG$sig"
	fi
	wait "$DAEMON_PID" || rc=$?
	DAEMON_PID=
	((rc == 0)) || fail "portholed exited with status $rc after SIG$sig (expected 0)"
	if grep -qE 'Sanitizer|runtime error:' "$DLOG"; then
		fail "sanitizer report in the daemon log"
	fi
}

# Checks that the daemon is still alive and still serving a fresh client.
daemon_serving() {
	daemon_alive || fail "portholed is not running any more"
	run ph ping
	[[ $RC == 0 ]] || fail "portholed does not answer ping$(last_run)"
}

# queue_has TEXT: true when `portholectl queue` shows TEXT.
queue_has() {
	phctl queue 2>/dev/null | grep -qF -- "$1"
}

# hold_slot OUT [SPEC...]: runs queue_client.py in the background with a
# first connection (peer 9) that takes the transfer slot for /q/stall and
# stops reading, then the SPECs; output in OUT, pid in $HOLD_PID. Returns
# once the daemon shows that transfer. Needs a $REPO/q/stall big enough to
# fill the socket buffers (64 MiB) and a daemon with --test-declared-peer;
# its --stall-timeout says when the slot is free again.
hold_slot() {
	local out=$1
	shift
	python3 "$LIB_DIR/queue_client.py" "$SOCK" --timeout 60 \
	    "name=blocker,peer=9,path=/q/stall,read=stop" "$@" >"$out" 2>&1 &
	HOLD_PID=$!
	track "$HOLD_PID"
	wait_for 10 queue_has "/q/stall" ||
		fail "the stalled reader never got the slot: $(phctl queue)"
}

# Log lines for one operation (GET, STAT, ...) so far.
log_ops() {
	grep -E "op=$1( |\$)" "$DLOG" || true
}

# ---- raw frames (for tests that bypass the client) -----------------------

# Hex of a wire string: u16 length, then the bytes.
hex_str() {
	local n
	n=$(printf '%s' "$1" | wc -c)
	printf '%04x%s' "$n" "$(printf '%s' "$1" | xxd -p | tr -d '\n')"
}

# frame TYPE PAYLOAD_HEX: a whole frame in hex (type as two hex digits).
frame() {
	local payload=${2:-}
	printf '504801%s%08x%s' "$1" $((${#payload} / 2)) "$payload"
}

# A HELLO for versions min..max (default 1..1) with every feature.
hello_hex() {
	frame 01 "$(printf '%04x%04x%08x%08x' "${1:-1}" "${2:-1}" 7 0)$(hex_str raw-test)"
}

# A GET of PATH at OFFSET (default 0), no flags.
get_hex() {
	frame 02 "$(printf '%016x%08x' "${2:-0}" 0)$(hex_str "$1")"
}

ping_hex() {
	frame 05 "$(printf '%016x' "$1")"
}

# Replies a scripted server (raw.py --serve) sends to the client.

# Hex of a u64 field.
u64() { printf '%016x' "$1"; }

# HELLO_ACK: version 1, RESUME|SHA256 (no ZSTD, so DATA stays plain).
hello_ack_hex() {
	frame 81 "$(printf '%04x%08x%08x' 1 6 1048576)$(hex_str fake-server)"
}

# digest_hex DIGEST_HEX|-: the has-digest byte, then 32 digest bytes
# (zeros for -, no digest).
digest_hex() {
	if [[ $1 == - ]]; then
		printf '00%064d' 0
	else
		printf '01%s' "$1"
	fi
}

# meta_hex SIZE DIGEST_HEX|-: a regular file, mode 0640, mtime 1 s.
meta_hex() {
	frame 83 "$(u64 "$1")$(u64 1000000000)$(printf '%08x' 416)01$(digest_hex "$2")"
}

# raw HOLD HEX...: sends the frames on a fresh connection to $SOCK (or
# $RAW_SOCK), reads for up to HOLD seconds; the description lands in $OUT
# (see raw.py).
raw() {
	local hold=$1
	shift
	run python3 "$LIB_DIR/raw.py" "${RAW_SOCK:-$SOCK}" "$hold" "$@"
	[[ $RC == 0 ]] || fail "raw client failed$(last_run)"
}

# as PEER OP PATH...: one request as the guest with CID PEER on $SOCK,
# through peer_client.py (a --test-declared-peer client); its JSON reply
# in $OUT.
as() {
	run python3 "$LIB_DIR/peer_client.py" "$SOCK" "$@"
	[[ $RC == 0 ]] || fail "peer client failed$(last_run)"
}

# expect_ok PEER OP PATH: that request succeeds.
expect_ok() {
	as "$@"
	jcheck "$OUT" 'docs[0]["result"] == "OK"'
}

# flip FILE OFFSET: inverts 4 bytes of FILE at OFFSET, in place.
flip() {
	python3 - "$1" "$2" <<'EOF' || fail "cannot damage $1"
import sys
with open(sys.argv[1], "r+b") as f:
    f.seek(int(sys.argv[2]))
    b = f.read(4)
    f.seek(int(sys.argv[2]))
    f.write(bytes(x ^ 0xff for x in b))
EOF
}
