#!/usr/bin/env bash
# Relay mode end to end: L0 (a repository) <- L1 <- L2 <- L3, each relay a
# portholed --upstream on the previous level's unix socket with its own
# cache. Pulls at L3 cold and warm, the same tree at every level, L0 going
# away and coming back, and a middle relay killed with SIGKILL mid-transfer:
# the requester fails, a retry succeeds, and no cache holds a corrupt blob.
# With L0 down a cached copy comes with a warning that it could not be
# revalidated (STALE, through every level); --fresh refuses it.
. "$(dirname "$0")/lib.sh"

LEVELS=(0 1 2 3)
declare -A LPID=()

# lsock N / lctl N: level N's data and control sockets.
lsock() { printf '%s' "$T/L$1.sock"; }
lctl() { printf '%s' "$T/L$1.ctl"; }

# lvl_start N: starts level N (L0 serves $REPO, the others relay to N-1)
# and waits until it answers ping.
lvl_start() {
	local n=$1 i args
	args=(-l "unix:$(lsock "$n")" -c "$(lctl "$n")"
	    --state-dir "$T/L$n/state" --cache-dir "$T/L$n/cache"
	    --cache-size 1G)
	mkdir -p "$T/L$n/state" "$T/L$n/cache"
	if ((n == 0)); then
		args+=(-r "$REPO")
	else
		args+=(--upstream "unix:$(lsock $((n - 1)))")
	fi
	[[ -z ${LPID[$n]:-} ]] || fail "level $n is already running"
	echo "#### start: portholed ${args[*]}" >>"$T/L$n.log"
	"$PORTHOLED" "${args[@]}" </dev/null >>"$T/L$n.log" 2>&1 &
	LPID[$n]=$!
	track "${LPID[$n]}"
	for ((i = 0; i < START_TIMEOUT * 10; i++)); do
		kill -0 "${LPID[$n]}" 2>/dev/null ||
			fail "level $n exited during startup$(lvl_log "$n")"
		if [[ -S $(lsock "$n") ]] && "$PORTHOLE" -e "unix:$(lsock "$n")" \
		    ping >/dev/null 2>&1 </dev/null; then
			return 0
		fi
		sleep 0.1
	done
	fail "level $n did not answer ping$(lvl_log "$n")"
}

# lvl_log N: the end of level N's log, for failure messages.
lvl_log() {
	printf '\n---- L%s log ----\n%s' "$1" "$(tail -n 25 "$T/L$1.log")"
}

# lvl_stop N: SIGTERM; it must exit 0 without a sanitizer report.
lvl_stop() {
	local n=$1 pid=${LPID[$1]} rc=0 i
	kill -TERM "$pid" || fail "level $n was already gone"
	for ((i = 0; i < STOP_TIMEOUT * 10; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -0 "$pid" 2>/dev/null && fail "level $n did not stop$(lvl_log "$n")"
	wait "$pid" || rc=$?
	LPID[$n]=
	((rc == 0)) || fail "level $n exited with $rc$(lvl_log "$n")"
	! grep -qE 'Sanitizer|runtime error:' "$T/L$n.log" ||
		fail "sanitizer report from level $n$(lvl_log "$n")"
}

# at N ARGS...: porthole against level N.
at() {
	local n=$1
	shift
	"$PORTHOLE" -e "unix:$(lsock "$n")" "$@"
}

# ctl N ARGS...: portholectl against level N.
ctl() {
	local n=$1
	shift
	"$PORTHOLECTL" -s "$(lctl "$n")" "$@"
}

# gets N: GET requests level N has logged so far.
gets() {
	grep -cE ' op=GET ' "$T/L$1.log" || true
}

# stat_json N: the cache stats of level N as JSON, in $OUT.
stat_json() {
	ok ctl "$1" --json cache stats
}

# part_over FILE BYTES: true once FILE holds more than BYTES.
part_over() {
	(($(fsize "$1") > $2))
}

# Fails unless every level's cache verifies without a corrupt blob.
verify_all() {
	local n
	for n in "${LEVELS[@]}"; do
		run ctl "$n" --json cache verify
		[[ $RC == 0 ]] || fail "cache verify at L$n$(last_run)"
		jcheck "$OUT" 'all(d["corrupt"] == [] for d in docs)'
	done
}

mkdir -p "$T/pulled"
mkrand "$REPO/bin/tool.bin" 5242880
mkrand "$REPO/bin/small" 1000
mkdir -p "$REPO/etc"
seq 1 200000 >"$REPO/etc/words.txt"
printf '' >"$REPO/etc/empty"
mkrand "$REPO/later.bin" 300000
mkrand "$REPO/large.bin" 268435456
for i in $(seq -w 1 40); do
	printf 'entry %s\n' "$i" >"$REPO/etc/f$i.conf"
done
FILES=(bin/tool.bin bin/small etc/words.txt etc/empty)

step "--upstream and --repo exclude each other"
expect_rc 2 "$PORTHOLED" --upstream "unix:$T/none.sock" -r "$REPO" \
    -l "unix:$T/x.sock" -c "$T/x.ctl" --state-dir "$T/x"

step "start L0 and three relays"
for n in "${LEVELS[@]}"; do
	lvl_start "$n"
done

step "cold pulls at L3"
for f in "${FILES[@]}"; do
	ok at 3 get "$f" "$T/pulled/cold-${f//\//_}"
	assert_same_file "$T/pulled/cold-${f//\//_}" "$REPO/$f"
	assert_verified_line "$T/pulled/cold-${f//\//_}" "$(sha_of "$REPO/$f")" \
	    "$(fsize "$REPO/$f")"
done
for n in 1 2 3; do
	stat_json "$n"
	jcheck "$OUT" 'docs[0]["upstream_fetches"] >= 4 and docs[0]["upstream_connected"]'
done

step "warm pulls at L3 come from L3's cache"
l0_gets=$(gets 0)
l2_gets=$(gets 2)
for f in "${FILES[@]}"; do
	ok at 3 get --json --fresh "$f" "$T/pulled/warm-${f//\//_}"
	assert_same_file "$T/pulled/warm-${f//\//_}" "$REPO/$f"
	jcheck "$OUT" "docs[0]['sha256'] == '$(sha_of "$REPO/$f")' and docs[0]['verified'] and docs[0]['stale'] is False"
	assert_file_lacks "$ERR" "revalidate"
done
[[ $(gets 0) == "$l0_gets" ]] || fail "warm pulls reached L0 ($l0_gets -> $(gets 0) GETs)"
[[ $(gets 2) == "$l2_gets" ]] || fail "warm pulls reached L2 ($l2_gets -> $(gets 2) GETs)"
stat_json 3
jcheck "$OUT" 'docs[0]["hits"] >= 4'

step "a pull at L1 is a hit there: the cold pull filled every level"
ok at 1 get bin/tool.bin "$T/pulled/l1-tool"
assert_same_file "$T/pulled/l1-tool" "$REPO/bin/tool.bin"
stat_json 1
jcheck "$OUT" 'docs[0]["hits"] >= 1'
[[ $(gets 0) == "$l0_gets" ]] || fail "a warm pull at L1 reached L0"

step "STAT and ls at L3 equal L0's"
for f in "${FILES[@]}" etc bin .; do
	ok at 0 stat --json "$f"
	cp "$OUT" "$T/stat0"
	ok at 3 stat --json "$f"
	cmp -s "$OUT" "$T/stat0" ||
		fail "stat $f differs: L0 $(cat "$T/stat0") L3 $(cat "$OUT")"
done
for d in / etc bin; do
	ok at 0 ls -l "$d"
	cp "$OUT" "$T/ls0"
	ok at 3 ls -l "$d"
	cmp -s "$OUT" "$T/ls0" || fail "ls -l $d differs:
L0: $(head -c 600 "$T/ls0")
L3: $(head -c 600 "$OUT")"
done
ok at 3 ls etc
[[ $(wc -l <"$OUT") == 42 ]] || fail "ls etc at L3 shows $(wc -l <"$OUT") names, expected 42"

step "L0 down: cached files still served, others 'upstream unavailable'"
lvl_stop 0
# The relays remember STAT answers for 2 s; then L1 falls back on its
# cache. Each file's answer has its own age, so each is waited for.
for f in "${FILES[@]}"; do
	wait_for 10 bash -c "'$PORTHOLE' -e 'unix:$(lsock 3)' stat --json '$f' | grep -q '\"stale\":true'" ||
		fail "STAT of $f at L3 does not say stale with L0 down$(lvl_log 1)"
	rm -f "$T/pulled/down"
	ok at 3 get "$f" "$T/pulled/down"
	assert_same_file "$T/pulled/down" "$REPO/$f"
	assert_err_has "warning: the host could not revalidate its copy"
done

step "L0 down: --json says stale, --fresh refuses the copy (6)"
rm -f "$T/pulled/down"
ok at 3 get -q --json bin/tool.bin "$T/pulled/down"
jcheck "$OUT" "docs[0]['stale'] is True and docs[0]['verified']"
assert_err_has "may be out of date"
assert_same_file "$T/pulled/down" "$REPO/bin/tool.bin"
rm -f "$T/pulled/down"
expect_rc 6 at 3 get --fresh bin/tool.bin "$T/pulled/down"
assert_err_has "could not revalidate its copy (its upstream is unreachable): refused (--fresh)"
assert_no_file "$T/pulled/down"
assert_no_file "$T/pulled/down.part"
# A client that predates STALE (features 7) never sees the bit; one that
# offers it (0x1f) sees it in META and END.
RAW_SOCK=$(lsock 3) raw 2 "$(hello_hex)" "$(get_hex bin/small)"
assert_out_has "hello_ack version=1 features=7 "
assert_out_has "meta flags=1"
assert_out_has "end flags=1"
RAW_SOCK=$(lsock 3) raw 2 "$(frame 01 "$(printf '%04x%04x%08x%08x' 1 1 31 0)$(hex_str raw-test)")" \
    "$(get_hex bin/small)"
assert_out_has "hello_ack version=1 features=31 "
assert_out_has "meta flags=3"
assert_out_has "end flags=3"
# L1, whose own parent is down, says the same first hand.
expect_rc 6 at 1 get --fresh --json etc/words.txt "$T/pulled/down"
jcheck "$OUT" "docs[0]['failed'] and docs[0]['exit'] == 6"
ok at 1 stat etc/words.txt
assert_out_has "stale:"
expect_rc 6 at 3 get later.bin "$T/pulled/later"
assert_err_has "upstream unavailable"
assert_no_file "$T/pulled/later"

step "L0 back: the relays reconnect by themselves"
lvl_start 0
wait_for 15 at 3 get later.bin "$T/pulled/later" 2>/dev/null ||
	fail "later.bin not served after L0 came back$(lvl_log 1)"
assert_same_file "$T/pulled/later" "$REPO/later.bin"

step "SIGKILL of L2 mid-transfer: the requester fails, nothing corrupt"
at 3 get -q large.bin "$T/pulled/large" >"$T/large.out" 2>"$T/large.err" &
getpid=$!
track "$getpid"
wait_for 60 part_over "$T/pulled/large.part" 1048576 ||
	fail "the transfer of large.bin did not start$(lvl_log 3)"
# Freeze the source so that L2 is surely in the middle of the stream.
kill -STOP "${LPID[0]}"
kill -0 "$getpid" 2>/dev/null || fail "large.bin finished before the kill"
kill -KILL "${LPID[2]}"
wait "${LPID[2]}" 2>/dev/null || true
LPID[2]=
kill -CONT "${LPID[0]}"
rc=0
wait "$getpid" || rc=$?
((rc != 0)) || fail "the requester succeeded although L2 died mid-transfer"
echo "   requester: exit $rc: $(head -c 300 "$T/large.err")"
assert_no_file "$T/pulled/large"

step "L2 restarted: the retry succeeds"
lvl_start 2
wait_for 15 at 3 get -q large.bin "$T/pulled/large" 2>/dev/null ||
	fail "large.bin not served after L2 came back$(lvl_log 2)$(lvl_log 3)"
assert_same_file "$T/pulled/large" "$REPO/large.bin"
rm -f "$T/pulled/large"

step "every level's cache verifies"
verify_all

step "every level stops cleanly"
for n in 3 2 1 0; do
	lvl_stop "$n"
done
pass
