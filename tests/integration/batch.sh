#!/usr/bin/env bash
# `porthole get a b c DIR/` pulls several files over one connection; a
# failure in the middle does not stop the others and sets the exit code.
. "$(dirname "$0")/lib.sh"

# relay_start NAME: a socat relay $T/NAME.sock -> the daemon, logging each
# connection it accepts to $T/NAME.log; its pid in $relay.
relay_start() {
	socat -d -d "UNIX-LISTEN:$T/$1.sock,fork" "UNIX-CONNECT:$SOCK" \
	    2>"$T/$1.log" &
	relay=$!
	track "$relay"
	wait_for 10 test -S "$T/$1.sock" || fail "socat relay did not start"
}

step "create the repository"
mkrand "$REPO/a.bin" 3M
mkrand "$REPO/sub/b.bin" 100K
printf 'c\n' >"$REPO/c.txt"
: >"$REPO/d.empty"

daemon_start

step "three files into DIR/ in one command"
mkdir -p "$T/dl"
ok ph get /a.bin sub/b.bin /c.txt "$T/dl/"
for f in a.bin b.bin c.txt; do
	src=$REPO/$f
	[[ $f == b.bin ]] && src=$REPO/sub/b.bin
	assert_same_file "$T/dl/$f" "$src"
	assert_verified_line "$T/dl/$f" "$(sha_of "$src")" "$(fsize "$src")"
done

step "all three requests came from one client process"
pids=$(grep -E 'op=GET path=/(a\.bin|sub/b\.bin|c\.txt) ' "$DLOG" |
    grep -oE 'pid=[0-9]+' | sort -u)
n=$(grep -cE 'op=GET path=/(a\.bin|sub/b\.bin|c\.txt) result=OK' "$DLOG")
assert_eq "$n" 3 "GET lines logged for the batch"
assert_eq "$(wc -l <<<"$pids")" 1 "distinct client pids in the batch ($pids)"

step "the batch used one connection (counted by a socat relay)"
relay_start relay
mkdir -p "$T/dl2"
ok "$PORTHOLE" -e "unix:$T/relay.sock" get a.bin sub/b.bin c.txt d.empty "$T/dl2/"
kill "$relay" 2>/dev/null
wait "$relay" 2>/dev/null
conns=$(grep -c 'accepting connection' "$T/relay.log")
assert_eq "$conns" 1 "connections the client opened for 4 files"
assert_same_file "$T/dl2/a.bin" "$REPO/a.bin"
assert_same_file "$T/dl2/b.bin" "$REPO/sub/b.bin"
assert_same_file "$T/dl2/c.txt" "$REPO/c.txt"
assert_same_file "$T/dl2/d.empty" "$REPO/d.empty"

step "a missing file in the middle: exit 3, the others still arrive"
mkdir -p "$T/dl3"
expect_rc 3 ph get a.bin no-such-file c.txt "$T/dl3/"
assert_same_file "$T/dl3/a.bin" "$REPO/a.bin"
assert_same_file "$T/dl3/c.txt" "$REPO/c.txt"
assert_no_file "$T/dl3/no-such-file"
assert_no_file "$T/dl3/no-such-file.part"

step "first failure's code wins: escape (4) before missing (3)"
mkdir -p "$T/dl4"
expect_rc 4 ph get ../x no-such-file c.txt "$T/dl4/"
assert_same_file "$T/dl4/c.txt" "$REPO/c.txt"

step "--json: one object per file"
mkdir -p "$T/dl5"
ok ph get --json a.bin c.txt "$T/dl5/"
jcheck "$OUT" "len(docs) == 2 and all(isinstance(d, dict) for d in docs)"
jcheck "$OUT" "any(isinstance(v, str) and '$(sha_of "$REPO/a.bin")' in v for v in allv)"
jcheck "$OUT" "any(isinstance(v, str) and '$(sha_of "$REPO/c.txt")' in v for v in allv)"

step "150 files: several durability groups, each GET sent before the last file is done"
mkdir -p "$REPO/many" "$T/dl6"
many=()
for ((i = 0; i < 150; i++)); do
	head -c $((i * 97)) /dev/urandom >"$REPO/many/f$i"
	many+=("many/f$i")
done
ok ph get --json "${many[@]}" "$T/dl6/"
for ((i = 0; i < 150; i++)); do
	assert_same_file "$T/dl6/f$i" "$REPO/many/f$i"
done
assert_eq "$(find "$T/dl6" -name '*.part' | wc -l)" 0 ".part files left"
jcheck "$OUT" "[d['remote'] for d in docs] == ['/many/f%d' % i for i in range(150)]"
ok ph get "${many[@]}" "$T/dl6/"
assert_eq "$(grep -c '^verified sha256:' "$ERR")" 150 "verified lines"

step "a low descriptor limit ends groups early; every file still arrives"
mkdir -p "$T/dl10"
ok bash -c 'ulimit -n 40 && exec "$@"' _ "$PORTHOLE" -e "unix:$SOCK" get -q \
    "${many[@]}" "$T/dl10/"
for ((i = 0; i < 150; i++)); do
	assert_same_file "$T/dl10/f$i" "$REPO/many/f$i"
done

step "a missing file among many: reported in its place, in order"
mkdir -p "$T/dl7"
expect_rc 3 ph get --json "${many[@]:0:70}" many/none "${many[@]:70:10}" "$T/dl7/"
jcheck "$OUT" "[d['remote'] for d in docs] == ['/many/f%d' % i for i in range(70)] + ['/many/none'] + ['/many/f%d' % i for i in range(70, 80)]"
jcheck "$OUT" "[d.get('failed', False) for d in docs].count(True) == 1 and docs[70]['exit'] == 3"
assert_same_file "$T/dl7/f79" "$REPO/many/f79"

step "the same name twice in one batch: the last one wins, as one by one"
mkdir -p "$T/dl8"
printf 'second\n' >"$REPO/sub/c.txt"
ok ph get c.txt sub/c.txt "$T/dl8/"
assert_same_file "$T/dl8/c.txt" "$REPO/sub/c.txt"
assert_no_file "$T/dl8/c.txt.part"

step "a .part that cannot be opened after its GET went out: that file fails (8), the connection is replaced, the rest arrive"
relay_start relay2
mkdir -p "$T/dl9"
mkfifo "$T/dl9/b.bin.part"
expect_rc 8 "$PORTHOLE" -e "unix:$T/relay2.sock" get a.bin sub/b.bin c.txt "$T/dl9/"
kill "$relay" 2>/dev/null
wait "$relay" 2>/dev/null
assert_err_has "b.bin.part: not a regular file"
assert_same_file "$T/dl9/a.bin" "$REPO/a.bin"
assert_same_file "$T/dl9/c.txt" "$REPO/c.txt"
assert_no_file "$T/dl9/b.bin"
[[ -p $T/dl9/b.bin.part ]] || fail "the FIFO in the way was touched"
assert_eq "$(grep -c 'accepting connection' "$T/relay2.log")" 2 \
    "connections (the abandoned reply costs one reconnect)"

step "several files to a destination that is not a directory: usage error"
echo x >"$T/notadir"
expect_rc 2 ph get a.bin c.txt "$T/notadir"
assert_eq "$(cat "$T/notadir")" x "a non-directory destination was overwritten"

daemon_stop
pass
