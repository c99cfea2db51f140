#!/usr/bin/env bash
# The content cache through the daemon: hits, single flight, a file that
# changes, eviction within the budget, compression at rest with and without
# client zstd, kill -9 during a fill, a full cache disk, `cache verify`
# finding a corrupt blob, and `repo scan` / `repo verify`.
. "$(dirname "$0")/lib.sh"

# stat_field KEY: one number from `portholectl cache stats --json`.
stat_field() {
	phctl --json cache stats | python3 -c \
	    'import json, sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"
}

# The blob files (not temporaries) in the cache dir.
blob_files() {
	find "$1" -path "$1/tmp" -prune -o -type f -name '[0-9a-f]*' -print |
	    grep -E '/[0-9a-f]{64}(\.zst)?$' || true
}

mkdir -p "$REPO/c" "$T/dl"
mkrand "$REPO/c/one" 3M
for i in 1 2 3 4 5; do
	mkrand "$REPO/c/e$i" 60K
done
mktext "$REPO/c/text" 8
mkrand "$REPO/c/random" 4M

step "cold pull fills the cache, warm pull is a hit"
daemon_start
ok ph get -q "/c/one" "$T/dl/one"
assert_same_file "$T/dl/one" "$REPO/c/one"
assert_eq "$(stat_field entries)" 1 "blobs after one pull"
assert_eq "$(stat_field repo_reads)" 1 "repository reads after one pull"
ok ph get -q "/c/one" "$T/dl/one2"
assert_same_file "$T/dl/one2" "$REPO/c/one"
assert_eq "$(stat_field hits)" 1 "hits after the warm pull"
assert_eq "$(stat_field repo_reads)" 1 "a hit reads no repository file"
# STAT of a file the cache knows needs no hashing pass.
ok ph stat "/c/one"
assert_eq "$(stat_field repo_reads)" 1 "STAT of a known file reads nothing"
[[ -z $(ls -A "$CACHE/tmp" 2>/dev/null) ]] || fail "temporaries left in $CACHE/tmp"

step "single flight: 10 concurrent pulls of a cold file read it once"
mkrand "$REPO/c/hot" 48M
before=$(stat_field repo_reads)
pids=()
for i in $(seq 1 10); do
	ph get -q "/c/hot" "$T/dl/hot$i" 2>"$T/hot$i.err" &
	pids+=($!)
done
for i in $(seq 1 10); do
	wait "${pids[$((i - 1))]}" || fail "pull $i failed: $(cat "$T/hot$i.err")"
	assert_same_file "$T/dl/hot$i" "$REPO/c/hot"
done
assert_eq "$(( $(stat_field repo_reads) - before ))" 1 "repository reads for 10 pulls"
jcheck <(phctl --json cache stats) 'docs[0]["fill_joins"] + docs[0]["hits"] >= 9'

step "a file modified between pulls is served new, never stale"
mkrand "$T/new" 3M
cp "$T/new" "$REPO/c/one"
touch -d '2 minutes ago' "$REPO/c/one"
ok ph get -q "/c/one" "$T/dl/one3"
assert_same_file "$T/dl/one3" "$T/new"
# Same size, same mtime, new bytes: the inode's ctime still moves.
mkrand "$T/new2" 3M
stamp=$(stat -c %y "$REPO/c/one")
cat "$T/new2" >"$REPO/c/one"
touch -d "$stamp" "$REPO/c/one"
ok ph get -q "/c/one" "$T/dl/one4"
assert_same_file "$T/dl/one4" "$T/new2"
daemon_stop

step "eviction keeps the budget, least recently used first"
rm -rf "$CACHE" "$STATE"
mkdir -p "$CACHE" "$STATE"
# Small files: below the size worth compressing, so no repacking runs.
daemon_start --cache-size 200K
for i in 1 2 3; do
	ok ph get -q "/c/e$i" "$T/dl/e$i"
done
# Touch e1, so e2 is the least recently used.
ok ph get -q "/c/e1" "$T/dl/e1b"
ok ph get -q "/c/e4" "$T/dl/e4"
phctl --json cache ls >"$T/ls.json" || fail "cache ls failed"
jcheck "$T/ls.json" 'len(docs[0]["blobs"]) == 3'
jcheck "$T/ls.json" 'sorted(b["path"] for b in docs[0]["blobs"]) == ["/c/e1", "/c/e3", "/c/e4"]'
jcheck <(phctl --json cache stats) 'docs[0]["bytes"] <= docs[0]["budget"] * 1.01 and docs[0]["evictions"] == 1'
used=$(du -sb --exclude=tmp "$CACHE" | cut -f1)
((used <= 200 * 1024 + 200 * 1024 / 100 + 65536)) ||
	fail "blob files use $used bytes for a 200K budget"
daemon_stop

step "compression at rest: text stored as zstd frames, random data raw"
daemon_start --cache-size 64M
ok ph get -q "/c/text" "$T/dl/text"
ok ph get -q "/c/random" "$T/dl/random"
wait_for 30 bash -c "$(declare -f stat_field phctl); PORTHOLECTL='$PORTHOLECTL' CTL='$CTL'; (( \$(stat_field compressed) == 1 ))" ||
	fail "the text blob was not compressed: $(phctl cache stats)"
phctl --json cache ls >"$T/ls.json" || fail "cache ls failed"
jcheck "$T/ls.json" '[b["form"] for b in docs[0]["blobs"] if b["path"] == "/c/text"] == ["zstd"]'
jcheck "$T/ls.json" '[b["form"] for b in docs[0]["blobs"] if b["path"] == "/c/random"] == ["raw"]'
jcheck "$T/ls.json" '[b["stored"] * 10 <= b["size"] * 9 for b in docs[0]["blobs"] if b["path"] == "/c/text"] == [True]'
jcheck <(phctl --json cache stats) 'docs[0]["saved_bytes"] > 0'
for z in "" --no-zstd; do
	for f in text random; do
		ok ph get $z "/c/$f" "$T/dl/$f.2"
		assert_same_file "$T/dl/$f.2" "$REPO/c/$f"
	done
done
# Resume in the middle of a compressed frame, with and without zstd.
for z in "" --no-zstd; do
	head -c 1500000 "$REPO/c/text" >"$T/dl/textr.part"
	ok ph get $z --resume "/c/text" "$T/dl/textr"
	assert_same_file "$T/dl/textr" "$REPO/c/text"
done
assert_eq "$(stat_field repo_reads)" 2 "repository reads: one per file"

step "cache verify finds a corrupted blob and removes it"
ok phctl cache verify
assert_out_has "blobs: 0 corrupt"
blob=$(blob_files "$CACHE" | grep -v '\.zst$' | head -n 1)
[[ -n $blob ]] || fail "no raw blob file in $CACHE"
# Every bit of 4 bytes flipped: a byte written as it was would change nothing.
flip "$blob" 1000
expect_rc 1 phctl cache verify
assert_err_has "1 corrupt"
assert_err_has "corrupt: sha256:$(basename "$blob" | cut -c1-64)"
ok phctl cache verify
assert_out_has "blobs: 0 corrupt"
ok ph get -q "/c/random" "$T/dl/random.3"
assert_same_file "$T/dl/random.3" "$REPO/c/random"
daemon_stop

step "kill -9 during a fill, then restart: no partial blob, no orphans"
truncate -s 0 "$REPO/c/one"
mkrand "$REPO/c/big" 200M
daemon_start --cache-size 1G
ph get -q "/c/big" "$T/dl/big" 2>/dev/null &
puller=$!
track "$puller"
wait_for 20 bash -c "[[ -n \$(ls -A '$CACHE/tmp' 2>/dev/null) ]]" ||
	fail "no fill in progress to interrupt"
kill -KILL "$DAEMON_PID"
wait "$DAEMON_PID" 2>/dev/null
DAEMON_PID=
wait "$puller" 2>/dev/null && fail "the pull succeeded although the daemon died"
# A leftover of our own making, as a crash between create and rename would.
mkdir -p "$CACHE/ff"
head -c 1000 /dev/urandom >"$CACHE/ff/$(printf 'f%.0s' $(seq 64))"
daemon_start --cache-size 1G
[[ -z $(ls -A "$CACHE/tmp" 2>/dev/null) ]] || fail "temporaries survived the restart"
[[ ! -e $CACHE/ff/$(printf 'f%.0s' $(seq 64)) ]] || fail "an orphan blob survived the restart"
ok phctl cache verify
ok ph get -q "/c/big" "$T/dl/big"
assert_same_file "$T/dl/big" "$REPO/c/big"
ok phctl cache verify
daemon_stop

step "repo scan hashes ahead, repo verify finds silent changes"
rm -f "$REPO/c/big" "$REPO/c/hot"
daemon_start
ok phctl repo scan
assert_out_has "hashed"
ok phctl --json repo scan
jcheck "$OUT" 'docs[0]["hashed"] == 0 and docs[0]["unchanged"] == docs[0]["files"]'
ok phctl repo verify
assert_out_has "0 mismatched"
ok phctl --json repo verify
jcheck "$OUT" 'docs[0]["mismatched"] == [] and docs[0]["verified"] >= 5'
daemon_stop
# Content that changed with no trace in size, mtime or ctime cannot be made
# from a shell; a wrong digest in the catalog is the same disagreement.
python3 - "$STATE/cache.db" <<'EOF2' || fail "cannot edit the catalog"
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
n = db.execute("UPDATE catalog SET sha256 = zeroblob(32) WHERE path = 'c/e2'").rowcount
db.commit()
sys.exit(0 if n == 1 else 1)
EOF2
daemon_start
expect_rc 1 phctl repo verify
assert_err_has "mismatch: /c/e2"
assert_err_has "1 mismatched"
ok ph get -q "/c/e2" "$T/dl/e2"
assert_same_file "$T/dl/e2" "$REPO/c/e2"
ok phctl repo verify
daemon_stop

step "a full cache disk: a clear error or an uncached copy, never a bad blob"
if mountpoint -q / && mkdir -p "$T/small" && mount -t tmpfs -o size=24m tmpfs "$T/small" 2>/dev/null; then
	on_cleanup "umount '$T/small'"
	mkrand "$REPO/c/huge" 40M
	daemon_start --cache-size 1G --cache-dir "$T/small"
	run ph get -q "/c/huge" "$T/dl/huge"
	if [[ $RC == 0 ]]; then
		assert_same_file "$T/dl/huge" "$REPO/c/huge"
	else
		assert_eq "$RC" 1 "exit status when the cache disk fills"
		assert_err_has "cache disk is full"
		assert_no_file "$T/dl/huge"
	fi
	ok ph get -q "/c/huge" "$T/dl/huge"
	assert_same_file "$T/dl/huge" "$REPO/c/huge"
	ok phctl cache verify
	[[ -z $(ls -A "$T/small/tmp" 2>/dev/null) ]] || fail "temporaries left on the full disk"
	daemon_stop
else
	fail "cannot mount a tmpfs for the full-disk case (needs root)"
fi

pass
