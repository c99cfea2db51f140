#!/usr/bin/env bash
# Access rules follow the file, not its spelling: a symlink to a denied
# directory, a symlink to a denied file and every way of writing them are
# refused for GET, STAT and LIST, a LIST hides a link into a denied tree,
# and a relay with its own rules does the same with what its parent says
# the paths lead to (PATH frames), also behind another relay; behind a
# parent that does not say, it serves only the peers its rules restrict in
# nothing. Peers are --test-declared-peer clients.
. "$(dirname "$0")/lib.sh"

# expect_denied PEER OP PATH: refused by rule 1.
expect_denied() {
	as "$@"
	jcheck "$OUT" 'docs[0]["result"] == "ERROR" and docs[0]["code"] == 6'
	assert_out_has "access denied by rule 1: "
}

# listed PEER PATH: the names a LIST shows that guest, space separated.
listed() {
	as "$1" list "$2"
	python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(" ".join(d["names"]) if d["result"] == "OK" else "ERROR %d" % d["code"])' "$OUT"
}

mkdir -p "$REPO/secret/deep" "$REPO/pub"
echo key >"$REPO/secret/key.txt"
echo x >"$REPO/secret/deep/x"
echo ok >"$REPO/pub/ok.txt"
ln -s secret "$REPO/alias"
ln -s ../secret/key.txt "$REPO/pub/keylink"
ln -s ../secret/none "$REPO/pub/dangling"
KEY_SHA=$(sha_of "$REPO/secret/key.txt")

# check_some: the links, through a chain of relays.
check_some() {
	local p
	for p in /alias/key.txt /pub/keylink /alias/missing; do
		expect_denied 7 get "$p"
	done
	expect_denied 7 stat /alias
	expect_denied 7 list /alias
	assert_eq "$(listed 7 /)" "pub" "LIST / as CID 7"
	assert_eq "$(listed 7 /pub)" "ok.txt" "LIST /pub as CID 7"
	expect_ok 8 get /pub/keylink
	jcheck "$OUT" "docs[0]['sha256'] == '$KEY_SHA'"
	assert_eq "$(listed 8 /pub)" "dangling keylink ok.txt" \
	    "LIST /pub as CID 8"
}

# check_all: peer 7 is refused the secret in every spelling, peer 8 is not.
check_all() {
	local p
	for p in /secret/key.txt /alias/key.txt /alias/deep/x /pub/keylink \
	    //alias/./key.txt /pub/../alias/key.txt /alias/deep/../key.txt \
	    /alias/missing /pub/dangling; do
		expect_denied 7 get "$p"
	done
	for p in /secret /alias /alias/ /alias/key.txt /alias/deep \
	    /pub/keylink /alias/missing; do
		expect_denied 7 stat "$p"
	done
	for p in /secret /alias /alias/deep /pub/../alias; do
		expect_denied 7 list "$p"
	done
	assert_eq "$(listed 7 /)" "pub" "LIST / as CID 7"
	assert_eq "$(listed 7 /pub)" "ok.txt" "LIST /pub as CID 7"
	expect_ok 7 get /pub/ok.txt
	expect_ok 8 get /alias/key.txt
	jcheck "$OUT" "docs[0]['sha256'] == '$KEY_SHA'"
	expect_ok 8 get /pub/keylink
	expect_ok 8 stat /alias
	assert_eq "$(listed 8 /)" "alias pub secret" "LIST / as CID 8"
	assert_eq "$(listed 8 /alias)" "deep key.txt" "LIST /alias as CID 8"
	assert_eq "$(listed 8 /pub)" "dangling keylink ok.txt" \
	    "LIST /pub as CID 8"
}

# serve [--no-repo --upstream ENDPOINT]: the daemon under test, as peers
# declare themselves, with the rules of the setup.
serve() {
	daemon_start "$@" --test-declared-peer --libvirt none
	ok phctl acl add deny cid:7 /secret
	ok phctl acl add allow '*' /
}

step "the daemon checks its rules on where a path really leads"
serve
check_all
daemon_stop

step "a relay checks its own rules on the paths its parent resolves"
parent_start
STATE=$T/state-relay
mkdir -p "$STATE"
serve --no-repo --upstream "unix:$L0"
check_all
daemon_stop

step "behind a relay without rules, the paths still come through"
mkdir -p "$T/l1state" "$T/l1cache"
"$PORTHOLED" -l "unix:$T/l1.sock" -c "$T/l1.ctl" --state-dir "$T/l1state" \
    --cache-dir "$T/l1cache" --upstream "unix:$L0" --libvirt none \
    </dev/null >>"$T/l1.log" 2>&1 &
L1_PID=$!
track "$L1_PID"
wait_for 20 "$PORTHOLE" -e "unix:$T/l1.sock" ping ||
	fail "the middle relay does not answer: $(cat "$T/l1.log")"
STATE=$T/state-relay2
mkdir -p "$STATE"
serve --no-repo --upstream "unix:$T/l1.sock"
check_some
daemon_stop
kill -TERM "$L1_PID"
wait "$L1_PID" || fail "the middle relay exited with status $?"
! grep -qE 'Sanitizer|runtime error:' "$T/l1.log" ||
	fail "sanitizer report in the middle relay's log"
parent_stop

step "a parent that does not say where paths lead: restricted peers refused"
python3 "$LIB_DIR/fake_parent.py" "$T/fake.sock" 2>>"$T/fake.log" &
track $!
wait_for 10 test -S "$T/fake.sock" || fail "the fake parent did not start"
STATE=$T/state-relay3
mkdir -p "$STATE"
serve --no-repo --upstream "unix:$T/fake.sock"
for op in get stat; do
	as 7 "$op" /good
	jcheck "$OUT" 'docs[0]["result"] == "ERROR" and docs[0]["code"] == 6'
	assert_out_has "does not report where /good leads"
done
expect_ok 8 stat /good
daemon_stop

pass
