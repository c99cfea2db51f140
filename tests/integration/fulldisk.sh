#!/usr/bin/env bash
# Full disks: a full state directory (the catalog database cannot grow)
# serves cold files uncached and says so once; `acl add` there fails with
# the real reason and changes nothing. A relay whose cache disk is full
# streams a file larger than the free space uncached, caches again as soon
# as there is room, and goes on from memory when the disk fills during a
# fill. Each disk is a small tmpfs, filled by a filler file (needs root to
# mount).
. "$(dirname "$0")/lib.sh"

# stat_field KEY: one number from `portholectl cache stats --json`.
stat_field() {
	phctl --json cache stats | python3 -c \
	    'import json, sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"
}

# small_disk DIR SIZE: a tmpfs of SIZE at DIR, unmounted at cleanup (lazily:
# a daemon still running then holds files there).
small_disk() {
	mkdir -p "$1"
	mountpoint -q / && mount -t tmpfs -o "size=$2" tmpfs "$1" 2>/dev/null ||
		fail "cannot mount a tmpfs at $1 (needs root)"
	on_cleanup "umount -l '$1'"
}

# fill_disk DIR: takes every free byte of DIR's file system.
fill_disk() {
	cat /dev/zero >"$1/filler" 2>/dev/null
	(($(df --output=avail -B1 "$1" | tail -n 1) == 0)) ||
		fail "$1 still has room after the filler"
}

# relay_uncached CACHE_DIR PATH: starts a relay to $PARENT caching in
# CACHE_DIR, pulls PATH through it: verified, and not cached.
relay_uncached() {
	daemon_start --no-repo --upstream "unix:$PARENT" --cache-dir "$1" \
	    --cache-size 1G
	ok ph get "/$2" "$T/dl/${2##*/}"
	assert_same_file "$T/dl/${2##*/}" "$REPO/$2"
	assert_verified_line "$T/dl/${2##*/}" "$(sha_of "$REPO/$2")" \
	    "$(fsize "$REPO/$2")"
	assert_eq "$(stat_field entries)" 0 "blobs cached of /$2"
}

# log_count PATTERN: daemon log lines matching the extended regex.
log_count() {
	grep -cE -- "$1" "$DLOG" || true
}

mkdir -p "$T/dl"
for f in a b c; do
	mkrand "$REPO/d/$f" 1M
done

step "a full state directory: cold GETs are served uncached, said once"
small_disk "$T/sdisk" 4m
STATE=$T/sdisk/state
mkdir -p "$STATE"
daemon_start --cache-size 64M
ok phctl acl add deny cid:7 /nothing
phctl --json acl ls >"$T/acl.before" || fail "acl ls failed"
fill_disk "$T/sdisk"
for f in a b; do
	ok ph get -q "/d/$f" "$T/dl/$f"
	assert_same_file "$T/dl/$f" "$REPO/d/$f"
done
assert_eq "$(log_count 'no room on the state directory ')" 1 \
    "log lines about the full state directory"
assert_eq "$(stat_field entries)" 0 "blobs cached on a full state directory"
assert_eq "$(stat_field uncached)" 2 "GETs served uncached"

step "acl add on a full state directory: the real error, nothing changed"
run phctl acl add deny cid:5 /x
((RC != 0)) || fail "acl add succeeded on a full state directory$(last_run)"
assert_err_has "No space left on device"
assert_file_lacks "$ERR" "no transaction is active"
phctl --json acl ls >"$T/acl.after" || fail "acl ls failed"
cmp -s "$T/acl.before" "$T/acl.after" ||
	fail "the rules changed: $(cat "$T/acl.before") -> $(cat "$T/acl.after")"

step "room again: the next cold GET is cached at once"
rm -f "$T/sdisk/filler"
ok ph get -q "/d/c" "$T/dl/c"
assert_same_file "$T/dl/c" "$REPO/d/c"
assert_eq "$(stat_field entries)" 1 "blobs cached once there is room"
assert_eq "$(log_count 'the state directory .* has room again')" 1 \
    "log lines about room again"
ok phctl acl add deny cid:8 /other
daemon_stop
# What the database holds: the rule added before and the one after, not the
# one refused.
daemon_start --cache-size 64M
ok phctl --json acl ls
jcheck "$OUT" '[r["prefix"] for r in docs[0]["rules"]] == ["/nothing", "/other"]'
daemon_stop

step "a relay with a full cache disk streams uncached"
PARENT=$T/parent.sock
mkdir -p "$T/pstate" "$T/pcache"
"$PORTHOLED" -l "unix:$PARENT" -c "$T/parent.ctl" --state-dir "$T/pstate" \
    --cache-dir "$T/pcache" -r "$REPO" </dev/null >>"$T/parent.log" 2>&1 &
PARENT_PID=$!
track "$PARENT_PID"
wait_for 20 "$PORTHOLE" -e "unix:$PARENT" ping ||
	fail "the parent daemon does not answer: $(cat "$T/parent.log")"
small_disk "$T/rdisk" 16m
STATE=$T/rstate
mkdir -p "$STATE"
mkrand "$REPO/r/big" 24M
printf 'hello\n' >"$REPO/r/six"
printf 'again\n' >"$REPO/r/six2"
relay_uncached "$T/rdisk/cache" r/big
[[ -z $(ls -A "$T/rdisk/cache/tmp" 2>/dev/null) ]] ||
	fail "temporaries left on the full disk"

step "the relay's disk full, then room again: cached at once"
fill_disk "$T/rdisk"
ok ph get -q "/r/six" "$T/dl/six"
assert_same_file "$T/dl/six" "$REPO/r/six"
assert_eq "$(stat_field entries)" 0 "blobs cached on a full disk"
rm -f "$T/rdisk/filler"
ok ph get -q "/r/six2" "$T/dl/six2"
assert_same_file "$T/dl/six2" "$REPO/r/six2"
assert_eq "$(stat_field entries)" 1 "blobs cached once there is room"
assert_eq "$(log_count 'no room on the cache disk ')" 1 \
    "log lines about the full cache disk"
assert_eq "$(log_count 'the cache disk .* has room again')" 1 \
    "log lines about room again"
ok ph get -q "/r/six2" "$T/dl/six2b"
assert_eq "$(stat_field hits)" 1 "hits for the cached small file"
daemon_stop

step "a relay whose disk fills during a fill goes on from memory"
# statvfs of the cache directory promises room; its tmp/, where fills are
# written, holds 2 MiB.
small_disk "$T/rc2/tmp" 2m
mkrand "$REPO/r/mid" 6M
relay_uncached "$T/rc2" r/mid
assert_eq "$(log_count "no room on the cache disk $T/rc2 \\(a write failed\\)")" 1 \
    "log lines about the disk that filled"
[[ -z $(ls -A "$T/rc2/tmp") ]] || fail "temporaries left: $(ls -A "$T/rc2/tmp")"
daemon_stop
kill -TERM "$PARENT_PID"
wait "$PARENT_PID" || fail "the parent daemon exited with status $?"

pass
