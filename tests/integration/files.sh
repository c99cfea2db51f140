#!/usr/bin/env bash
# Pulls small, empty, text and 1 GiB random files and checks every byte,
# the digest, the mode and mtime, the verified line and the JSON output.
. "$(dirname "$0")/lib.sh"

step "create the repository"
printf 'hello, porthole\n' >"$REPO/small.txt"
: >"$REPO/empty"
mkdir -p "$REPO/docs/deep/er"
# Compressible text: exercises DATA_ZSTD when the daemon chooses it.
for ((i = 0; i < 40000; i++)); do
	echo "line $i of a compressible document, repeated words words words"
done >"$REPO/docs/deep/er/text.log"
chmod 0640 "$REPO/docs/deep/er/text.log"
touch -d @1614834367.123456789 "$REPO/docs/deep/er/text.log"
mkrand "$REPO/odd.bin" 1048577		# one byte over a DATA chunk
mkrand "$REPO/big.bin" 1G
chmod 0755 "$REPO/big.bin"
mkdir -p "$T/dl"

daemon_start

step "small file into a directory"
ok ph get /small.txt "$T/dl/"
assert_same_file "$T/dl/small.txt" "$REPO/small.txt"
assert_verified_line "$T/dl/small.txt" "$(sha_of "$REPO/small.txt")" 16
assert_no_file "$T/dl/small.txt.part"

step "small file, LOCAL omitted: lands in the current directory"
mkdir -p "$T/cwd"
ok bash -c 'cd "$1" && shift && exec "$@"' _ "$T/cwd" "$PORTHOLE" -e "unix:$SOCK" get small.txt
assert_same_file "$T/cwd/small.txt" "$REPO/small.txt"

step "empty file"
ok ph get empty "$T/dl/empty"
[[ -f $T/dl/empty && ! -s $T/dl/empty ]] || fail "empty file not created empty"
assert_verified_line "$T/dl/empty" "$(sha_of "$REPO/empty")" 0

step "compressible file, default flags (zstd allowed): mode and mtime from META"
ok ph get /docs/deep/er/text.log "$T/dl/text.log"
assert_same_file "$T/dl/text.log" "$REPO/docs/deep/er/text.log"
assert_eq "$(stat -c %a "$T/dl/text.log")" 640 "mode of the pulled file"
assert_eq "$(stat -c %.9Y "$T/dl/text.log")" 1614834367.123456789 \
    "mtime (with nanoseconds) of the pulled file"

step "compressible file with --no-zstd"
ok ph get --no-zstd /docs/deep/er/text.log "$T/dl/text-plain.log"
assert_same_file "$T/dl/text-plain.log" "$REPO/docs/deep/er/text.log"

step "a file one byte longer than a DATA chunk"
ok ph get -q odd.bin "$T/dl/odd.bin"
assert_same_file "$T/dl/odd.bin" "$REPO/odd.bin"
[[ ! -s $ERR ]] || fail "-q still printed to stderr$(last_run)"

step "to stdout with '-'"
ok ph get -q /docs/deep/er/text.log -
assert_same_file "$OUT" "$REPO/docs/deep/er/text.log"

step "to stdout when it is a socket, and when its reader has gone"
# The client decides once whether standard output is a socket (send) or
# not (write); both must deliver every byte and report a closed reader.
python3 - "$T/sock.out" "$PORTHOLE" -e "unix:$SOCK" get -q odd.bin - <<'EOF' ||
import socket, subprocess, sys
a, b = socket.socketpair()
p = subprocess.Popen(sys.argv[2:], stdout=a)
a.close()
with open(sys.argv[1], "wb") as out:
    while True:
        data = b.recv(1 << 20)
        if not data:
            break
        out.write(data)
sys.exit(p.wait())
EOF
	fail "porthole get - into a socket failed"
assert_same_file "$T/sock.out" "$REPO/odd.bin"
python3 - "$PORTHOLE" -e "unix:$SOCK" get -q big.bin - <<'EOF' >"$T/gone.out" 2>&1 ||
import socket, subprocess, sys
a, b = socket.socketpair()
b.close()
p = subprocess.Popen(sys.argv[1:], stdout=a)
a.close()
print("exit", p.wait())
EOF
	fail "could not run porthole with a closed socket as stdout"
assert_file_has "$T/gone.out" "exit 8" "porthole into a closed socket"

step "an existing file is replaced"
echo stale >"$T/dl/replace.txt"
ok ph get small.txt "$T/dl/replace.txt"
assert_same_file "$T/dl/replace.txt" "$REPO/small.txt"

step "--json output"
ok ph get --json small.txt "$T/dl/json.txt"
assert_same_file "$T/dl/json.txt" "$REPO/small.txt"
sum=$(sha_of "$REPO/small.txt")
jcheck "$OUT" "len(docs) == 1 and isinstance(docs[0], dict)"
jcheck "$OUT" "any(isinstance(v, str) and '$sum' in v for v in allv)"
jcheck "$OUT" "16 in allv"

step "--no-verify still writes the right bytes"
ok ph get --no-verify odd.bin "$T/dl/nv.bin"
assert_same_file "$T/dl/nv.bin" "$REPO/odd.bin"

step "1 GiB random file"
ok ph get /big.bin "$T/dl/big.bin"
assert_same_file "$T/dl/big.bin" "$REPO/big.bin"
assert_verified_line "$T/dl/big.bin" "$(sha_of "$REPO/big.bin")" 1073741824
assert_eq "$(stat -c %a "$T/dl/big.bin")" 755 "mode of the pulled 1 GiB file"
assert_no_file "$T/dl/big.bin.part"

step "1 GiB random file, --json, --no-zstd"
rm -f "$T/dl/big.bin"
ok ph get --json --no-zstd /big.bin "$T/dl/big.bin"
assert_same_file "$T/dl/big.bin" "$REPO/big.bin"
bigsum=$(sha_of "$REPO/big.bin")
jcheck "$OUT" "len(docs) == 1 and any(isinstance(v, str) and '$bigsum' in v for v in allv)"
jcheck "$OUT" "1073741824 in allv"
rm -f "$T/dl/big.bin"

step "the daemon logged each request"
assert_file_has "$DLOG" "op=GET path=/small.txt result=OK"
assert_file_has "$DLOG" "op=GET path=/big.bin result=OK"
assert_file_has "$DLOG" "op=GET path=/docs/deep/er/text.log result=OK"

daemon_stop
pass
