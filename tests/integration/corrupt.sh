#!/usr/bin/env bash
# A cached blob damaged on the host's disk after it was checked (4 bytes
# flipped in the blob file): the next `porthole get` fails its check once,
# says so, asks again with REVERIFY, and gets the right bytes; the daemon
# re-hashes the blob it was told about, removes it and serves the file from
# the repository. A raw blob pulled without zstd (SHA-256 mismatch at END),
# a zstd blob pulled with zstd (its stored frames fail to decode in the
# guest) and a zstd blob pulled without zstd (the daemon decodes it and
# finds the damage itself). A client's report about a sound blob removes
# nothing. Then a relay: its own damaged blob is replaced from its parent.
. "$(dirname "$0")/lib.sh"

# The blob file of PATH in cache dir DIR (raw or .zst), from `cache ls`.
blob_of() {	# ctl-socket cache-dir path
	local sha form
	read -r sha form < <("$PORTHOLECTL" -s "$1" --json cache ls |
	    python3 -c 'import json, sys
for b in json.load(sys.stdin)["blobs"]:
    if b["path"] == sys.argv[1]:
        print(b["sha256"], b["form"])' "$3")
	[[ -n ${sha:-} ]] || fail "no blob for $3 in $2"
	if [[ $form == zstd ]]; then
		printf '%s/%s/%s.zst' "$2" "${sha:0:2}" "$sha"
	else
		printf '%s/%s/%s' "$2" "${sha:0:2}" "$sha"
	fi
}

# Fails unless the last run retried exactly once and kept no .part.
assert_one_retry() {	# local-path
	[[ $(grep -c 'retrying once' "$ERR") == 1 ]] ||
		fail "expected one retry$(last_run)"
	assert_no_file "$1.part"
}

# damage CTL CACHE PATH FORM DIVISOR: flips 4 bytes of PATH's blob, which
# must be in FORM (raw or zstd), at its size / DIVISOR (0: at byte 0);
# the blob's file is left in $blob.
damage() {
	blob=$(blob_of "$1" "$2" "$3")
	if [[ $4 == zstd ]]; then
		[[ $blob == *.zst ]] || fail "$3 is not stored as zstd frames"
	else
		[[ $blob != *.zst ]] || fail "$3 was stored compressed"
	fi
	if (($5 == 0)); then
		flip "$blob" 0
	else
		flip "$blob" $(($(fsize "$blob") / $5))
	fi
}

# healed LOCAL WANT CMD...: CMD must exit 0 after exactly one retry, with
# the bytes of WANT in LOCAL.
healed() {
	local dst=$1 want=$2
	shift 2
	run "$@"
	[[ $RC == 0 ]] || fail "the pull failed$(last_run)"
	assert_same_file "$dst" "$want"
	assert_one_retry "$dst"
}

# GET log lines for PATH so far.
gets_of() {
	grep -c "op=GET path=$1 " "$DLOG" || true
}

mkdir -p "$T/dl"
mkrand "$REPO/raw.bin" 3M
mktext "$REPO/text.txt" 4
mktext "$REPO/text2.txt" 3

step "warm the cache: a raw blob and two zstd blobs"
daemon_start --cache-size 64M
for f in raw.bin text.txt text2.txt; do
	ok ph get -q "/$f" "$T/dl/warm-$f"
done
wait_for 30 bash -c "[[ \$('$PORTHOLECTL' -s '$CTL' --json cache stats |
    python3 -c 'import json, sys; print(json.load(sys.stdin)[\"compressed\"])') == 2 ]]" ||
	fail "the text blobs were not compressed: $(phctl cache stats)"

step "a sound blob reported bad by nobody: no retry, no re-check"
ok ph get --no-zstd "/raw.bin" "$T/dl/raw0"
assert_same_file "$T/dl/raw0" "$REPO/raw.bin"
assert_file_lacks "$ERR" "retrying"

step "raw blob, 4 bytes flipped, --no-zstd: one failed attempt, then the right bytes"
damage "$CTL" "$CACHE" /raw.bin raw 3
before=$(gets_of /raw.bin)
healed "$T/dl/raw1" "$REPO/raw.bin" ph get --no-zstd --json "/raw.bin" "$T/dl/raw1"
assert_err_has "SHA-256 mismatch"
jcheck "$OUT" 'docs[0]["retried"] is True and docs[0]["stale"] is False'
assert_eq "$(( $(gets_of /raw.bin) - before ))" 2 "GETs for one damaged pull"
assert_file_has "$DLOG" "cached blob sha256:$(basename "$blob") is corrupt (digest mismatch): removed"
[[ ! -e $blob ]] || cmp -s "$blob" "$REPO/raw.bin" ||
	fail "the damaged blob $blob is still there"
ok phctl cache verify
assert_out_has "0 corrupt"

step "zstd blob, 4 bytes flipped, pulled with zstd: the guest cannot decode it (7, not 6), then the right bytes"
damage "$CTL" "$CACHE" /text.txt zstd 2
healed "$T/dl/text1" "$REPO/text.txt" ph get "/text.txt" "$T/dl/text1"
grep -qE 'damaged data|SHA-256 mismatch' "$ERR" ||
	fail "no integrity failure before the retry$(last_run)"
assert_file_lacks "$ERR" "protocol error"
assert_file_has "$DLOG" "cached blob sha256:$(basename "$blob" .zst) is corrupt"
ok phctl cache verify
assert_out_has "0 corrupt"

step "zstd blob, 4 bytes flipped, pulled without zstd: the daemon finds it, INTEGRITY, then the right bytes"
# The first frame's magic number: the daemon cannot even read its size.
damage "$CTL" "$CACHE" /text2.txt zstd 0
healed "$T/dl/text2" "$REPO/text2.txt" ph get --no-zstd "/text2.txt" "$T/dl/text2"
assert_err_has "the cached copy is damaged (a frame of the wrong size): removed from the cache"
assert_file_has "$DLOG" "op=GET path=/text2.txt result=INTEGRITY"
assert_file_lacks "$ERR" "protocol error"
ok phctl cache verify
assert_out_has "0 corrupt"

step "the damaged copies were replaced: pulls are hits again, with no retry"
for f in raw.bin text.txt text2.txt; do
	ok ph get -q "/$f" "$T/dl/again-$f"
	assert_same_file "$T/dl/again-$f" "$REPO/$f"
	assert_file_lacks "$ERR" "retrying"
done
reads=$(phctl --json cache stats | python3 -c 'import json, sys; print(json.load(sys.stdin)["repo_reads"])')
assert_eq "$reads" 6 "repository reads: three fills, three refills"

step "--resume with a damaged .part: one retry from the start"
head -c 2000000 "$REPO/raw.bin" >"$T/dl/raw2.part"
flip "$T/dl/raw2.part" 12345
healed "$T/dl/raw2" "$REPO/raw.bin" ph get --resume "/raw.bin" "$T/dl/raw2"
# The host's copy was sound: it was checked, and kept.
assert_file_has "$DLOG" "checks out, sent again"
# Reported again at once: not read again (30 s), served as it is.
head -c 2000000 "$REPO/raw.bin" >"$T/dl/raw3.part"
flip "$T/dl/raw3.part" 54321
healed "$T/dl/raw3" "$REPO/raw.bin" ph get --resume "/raw.bin" "$T/dl/raw3"
assert_eq "$(grep -c 'checks out, sent again' "$DLOG")" 1 "re-checks of a sound blob"
ok phctl cache verify
assert_out_has "0 corrupt"

step "to standard output: bytes cannot be taken back, so no retry (7)"
damage "$CTL" "$CACHE" /raw.bin raw 1000
expect_rc 7 ph get --no-zstd "/raw.bin" -
assert_err_has "SHA-256 mismatch"
assert_file_lacks "$ERR" "retrying"

step "into a FIFO: no retry either, its reader gets each byte once (7)"
# The blob is still damaged: nobody reported it.
mkfifo "$T/dl/fifo"
cat "$T/dl/fifo" >"$T/dl/fifo.out" &
reader=$!
track "$reader"
expect_rc 7 ph get --no-zstd "/raw.bin" "$T/dl/fifo"
wait "$reader" || true
assert_err_has "SHA-256 mismatch"
assert_file_lacks "$ERR" "retrying"
assert_eq "$(fsize "$T/dl/fifo.out")" "$(fsize "$REPO/raw.bin")" "bytes the FIFO's reader got"
[[ -p $T/dl/fifo ]] || fail "the FIFO was replaced"
daemon_stop

step "the parent's damaged blob through a relay: the report goes on to the parent"
RSOCK=$T/relay.sock
RCTL=$T/relay.ctl
RCACHE=$T/relay-cache
RLOG=$T/relay.log
daemon_start --cache-size 64M
"$PORTHOLED" -l "unix:$RSOCK" -c "$RCTL" --state-dir "$T/relay-state" \
    --cache-dir "$RCACHE" --cache-size 64M --upstream "unix:$SOCK" \
    </dev/null >>"$RLOG" 2>&1 &
RPID=$!
track "$RPID"
wait_for 20 "$PORTHOLE" -e "unix:$RSOCK" ping >/dev/null 2>&1 ||
	fail "the relay did not start: $(tail -n 20 "$RLOG")"
# The relay checks the parent's bytes before it caches them: INTEGRITY.
healed "$T/dl/r0" "$REPO/raw.bin" "$PORTHOLE" -e "unix:$RSOCK" get --no-zstd /raw.bin "$T/dl/r0"
assert_file_has "$DLOG" "cached blob sha256:$(basename "$blob") is corrupt (digest mismatch): removed"
ok phctl cache verify
assert_out_has "0 corrupt"

step "the parent's damaged zstd blob through a relay: INTEGRITY (not a protocol error), then the right bytes"
damage "$CTL" "$CACHE" /text.txt zstd 3
healed "$T/dl/rt" "$REPO/text.txt" "$PORTHOLE" -e "unix:$RSOCK" get /text.txt "$T/dl/rt"
assert_file_lacks "$ERR" "UNAVAILABLE"
assert_file_has "$DLOG" "cached blob sha256:$(basename "$blob" .zst) is corrupt"

step "a relay's own damaged blob is replaced from its parent"
damage "$RCTL" "$RCACHE" /raw.bin raw 4
healed "$T/dl/r1" "$REPO/raw.bin" "$PORTHOLE" -e "unix:$RSOCK" get --no-zstd /raw.bin "$T/dl/r1"
assert_file_has "$RLOG" "is corrupt (digest mismatch): removed"
ok "$PORTHOLECTL" -s "$RCTL" cache verify
assert_out_has "0 corrupt"
kill -TERM "$RPID"
rc=0
wait "$RPID" || rc=$?
((rc == 0)) || fail "the relay exited with $rc: $(tail -n 20 "$RLOG")"
! grep -qE 'Sanitizer|runtime error:' "$RLOG" || fail "sanitizer report from the relay"
daemon_stop

pass
