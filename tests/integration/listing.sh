#!/usr/bin/env bash
# stat and ls: plain, -l and --json output, error codes, and a directory of
# 300 entries, which needs more than one LIST_REPLY (256 entries each).
. "$(dirname "$0")/lib.sh"

step "create the repository"
printf '0123456789' >"$REPO/ten.bin"
chmod 0604 "$REPO/ten.bin"
touch -d @1600000000 "$REPO/ten.bin"
mkdir -p "$REPO/dir/sub" "$REPO/many"
echo x >"$REPO/dir/file one.txt"
echo y >"$REPO/dir/ünïcödé"
mkfifo "$REPO/dir/pipe"
for ((i = 0; i < 300; i++)); do
	printf '%d' "$i" >"$REPO/many/$(printf 'entry-%03d' "$i")"
done
: >"$REPO/many/Zed"		# sorts before "entry-" by bytes
expected_many=$( (cd "$REPO/many" && printf '%s\n' *) | LC_ALL=C sort)

daemon_start

step "stat a file: size and digest"
sum=$(sha_of "$REPO/ten.bin")
ok ph stat /ten.bin
assert_out_has 10
assert_out_has "$sum"

step "stat --json"
ok ph stat --json ten.bin
jcheck "$OUT" "len(docs) == 1 and isinstance(docs[0], dict)"
jcheck "$OUT" "10 in allv"
jcheck "$OUT" "any(isinstance(v, str) and '$sum' in v for v in allv)"
jcheck "$OUT" "1600000000 in allv or 1600000000000000000 in allv or any(isinstance(v, str) and '2020-09-13' in v for v in allv)"

step "stat the root and a directory"
ok ph stat /
ok ph stat dir
ok ph stat --json dir/sub
jcheck "$OUT" "len(docs) == 1"

step "stat errors"
expect_rc 3 ph stat no-such
expect_rc 3 ph stat dir/no-such/deeper
expect_rc 3 ph stat ten.bin/below

step "ls of the root"
ok ph ls /
for n in ten.bin dir many; do
	grep -qE "(^|[ /])$n/?\$" "$OUT" || fail "ls / lacks $n$(last_run)"
done

step "ls -l shows sizes"
ok ph ls -l /
grep -E '(^| )ten\.bin$' "$OUT" | grep -qw 10 || fail "ls -l: no size 10 on ten.bin's line$(last_run)"

step "ls of a directory with spaces, unicode and a FIFO"
ok ph ls dir
assert_out_has "file one.txt"
assert_out_has "ünïcödé"
assert_out_has "pipe"
assert_out_has "sub"

step "ls --json"
ok ph ls --json dir
jcheck "$OUT" "sorted(set(n for d in docs for n in field(d, 'name'))) == sorted(['file one.txt', 'ünïcödé', 'pipe', 'sub'])"

step "300 entries: every one listed, in byte order, across LIST pages"
ok ph ls many
assert_eq "$(cat "$OUT")" "$expected_many" "plain ls of many/"
ok ph ls -l /many/
assert_eq "$(wc -l <"$OUT")" 301 "lines of ls -l many/"
for n in entry-000 entry-255 entry-256 entry-299 Zed; do
	grep -qE "(^| )$n\$" "$OUT" || fail "ls -l many lacks $n$(last_run)"
done
ok ph ls --json many
jcheck "$OUT" "[n for d in docs for n in field(d, 'name')] == '''$expected_many'''.split('\n')"
nlist=$(log_ops LIST | grep -c 'path=/many ')
# Three listings of 301 entries, two pages each.
((nlist >= 6)) || fail "expected at least 6 LIST requests for many/ (2 pages x 3 listings), got $nlist"

step "ls errors"
expect_rc 3 ph ls no-such
expect_rc 3 ph ls ten.bin

step "get of a directory: not a file (3)"
expect_rc 3 ph get dir "$T/"

daemon_stop
pass
