#!/usr/bin/env bash
# Where the client finds the digest it verifies against. A server streaming
# a file it has not hashed yet sends META without a digest and the SHA-256
# of the whole file in END; one that knows it sends it in both. A scripted
# server (raw.py --serve) plays the host, so each case is exactly the frames
# written here.
. "$(dirname "$0")/lib.sh"

FAKE=$T/fake.sock

# end_hex BYTES DIGEST_HEX|-
end_hex() {
	frame 86 "$(u64 "$1")$(digest_hex "$2")"
}

# data_hex FILE [SKIP]: one DATA frame with FILE's bytes after SKIP.
data_hex() {
	frame 84 "$(tail -c +$((${2:-0} + 1)) "$1" | xxd -p | tr -d '\n')"
}

# serve REPLY_HEX...: starts the scripted server in the background; its
# report goes to $T/fake.out. Answers HELLO, then one GET.
serve() {
	rm -f "$FAKE"
	python3 "$LIB_DIR/raw.py" --serve "$FAKE" 30 "$(hello_ack_hex)" \
	    "$@" >"$T/fake.out" 2>&1 &
	FAKE_PID=$!
	track "$FAKE_PID"
	wait_for 10 test -S "$FAKE" || fail "the scripted server did not start"
}

# Waits for the scripted server and checks it saw HELLO and one GET.
served() {
	wait "$FAKE_PID" || fail "scripted server failed: $(cat "$T/fake.out")"
	assert_file_has "$T/fake.out" "request type=0x01 "
	assert_file_has "$T/fake.out" "request type=0x02 "
}

fake() {
	"$PORTHOLE" -e "unix:$FAKE" "$@"
}

step "create the file the scripted server sends"
# Small enough that one DATA frame in hex fits one argument (128 KiB).
mkrand "$T/src.bin" 30000
SIZE=$(fsize "$T/src.bin")
SHA=$(sha_of "$T/src.bin")
OTHER=$(printf 'x' | sha256sum | cut -d' ' -f1)
EMPTY=$(sha_of /dev/null)
mkdir -p "$T/dl"

step "META without a digest, END with the right one: accepted"
serve "$(meta_hex "$SIZE" -)$(data_hex "$T/src.bin")$(end_hex "$SIZE" "$SHA")"
ok fake get /src.bin "$T/dl/a.bin"
served
assert_same_file "$T/dl/a.bin" "$T/src.bin"
assert_verified_line "$T/dl/a.bin" "$SHA" "$SIZE"
assert_eq "$(stat -c %a "$T/dl/a.bin")" 640 "mode from META"
assert_no_file "$T/dl/a.bin.part"

step "META without a digest, END with a wrong one: integrity failure (7)"
serve "$(meta_hex "$SIZE" -)$(data_hex "$T/src.bin")$(end_hex "$SIZE" "$OTHER")"
expect_rc 7 fake get /src.bin "$T/dl/b.bin"
served
assert_err_has "SHA-256 mismatch: expected $OTHER, got $SHA"
assert_no_file "$T/dl/b.bin"
assert_no_file "$T/dl/b.bin.part"

step "META without a digest, END without one either: integrity failure (7)"
serve "$(meta_hex "$SIZE" -)$(data_hex "$T/src.bin")$(end_hex "$SIZE" -)"
expect_rc 7 fake get /src.bin "$T/dl/c.bin"
served
assert_err_has "no SHA-256 digest"
assert_no_file "$T/dl/c.bin"
assert_no_file "$T/dl/c.bin.part"

step "no digest anywhere, --no-verify: kept, reported unverified"
serve "$(meta_hex "$SIZE" -)$(data_hex "$T/src.bin")$(end_hex "$SIZE" -)"
ok fake get --no-verify /src.bin "$T/dl/d.bin"
served
assert_same_file "$T/dl/d.bin" "$T/src.bin"
assert_err_has "unverified sha256:$SHA"

step "META and END digests that differ: changed on the host (7)"
serve "$(meta_hex "$SIZE" "$OTHER")$(data_hex "$T/src.bin")$(end_hex "$SIZE" "$SHA")"
expect_rc 7 fake get /src.bin "$T/dl/e.bin"
served
assert_err_has "changed on the host"
assert_no_file "$T/dl/e.bin"

step "META and END both with the right digest: accepted as before"
serve "$(meta_hex "$SIZE" "$SHA")$(data_hex "$T/src.bin")$(end_hex "$SIZE" "$SHA")"
ok fake get /src.bin "$T/dl/f.bin"
served
assert_same_file "$T/dl/f.bin" "$T/src.bin"

step "an empty file: META without a digest, END(0) with the digest of nothing"
serve "$(meta_hex 0 -)$(end_hex 0 "$EMPTY")"
ok fake get /empty "$T/dl/g"
served
assert_eq "$(fsize "$T/dl/g")" 0 "size of the empty file"
assert_verified_line "$T/dl/g" "$EMPTY" 0

step "--resume: END's digest is checked against the whole file, .part included"
head -c 12000 "$T/src.bin" >"$T/dl/h.bin.part"
serve "$(meta_hex "$SIZE" -)$(data_hex "$T/src.bin" 12000)$(end_hex $((SIZE - 12000)) "$SHA")"
ok fake get --resume /src.bin "$T/dl/h.bin"
served
# The GET asked for the bytes after the 12000 already there.
assert_file_has "$T/fake.out" "payload=$(u64 12000)00000000"
assert_same_file "$T/dl/h.bin" "$T/src.bin"

step "--resume with a corrupted prefix: END's digest catches it (7)"
head -c 12000 /dev/urandom >"$T/dl/i.bin.part"
serve "$(meta_hex "$SIZE" -)$(data_hex "$T/src.bin" 12000)$(end_hex $((SIZE - 12000)) "$SHA")"
expect_rc 7 fake get --resume /src.bin "$T/dl/i.bin"
served
assert_err_has "SHA-256 mismatch"
assert_no_file "$T/dl/i.bin"
assert_no_file "$T/dl/i.bin.part"

step "several files, the middle one fails END's check: the others are kept"
serve "$(meta_hex "$SIZE" -)$(data_hex "$T/src.bin")$(end_hex "$SIZE" "$SHA")" \
    "$(meta_hex "$SIZE" -)$(data_hex "$T/src.bin")$(end_hex "$SIZE" "$OTHER")" \
    "$(meta_hex 0 -)$(end_hex 0 "$EMPTY")"
mkdir -p "$T/many"
expect_rc 7 fake get /one /two /three "$T/many/"
served
assert_same_file "$T/many/one" "$T/src.bin"
assert_no_file "$T/many/two"
assert_no_file "$T/many/two.part"
assert_eq "$(fsize "$T/many/three")" 0 "size of the third file"
assert_verified_line "$T/many/three" "$EMPTY" 0

pass
