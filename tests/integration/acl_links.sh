#!/usr/bin/env bash
# Access rules follow the file, not its spelling: a symlink to a denied
# directory, a symlink to a denied file and every way of writing them are
# refused for GET, STAT and LIST, a LIST hides a link into a denied tree,
# and a relay with its own rules does the same with what its parent says
# the paths lead to (PATH frames). Peers are --test-declared-peer clients.
. "$(dirname "$0")/lib.sh"

PC=$LIB_DIR/peer_client.py

# as PEER OP PATH: one request as guest CID PEER on $SOCK; JSON in $OUT.
as() {
	run python3 "$PC" "$SOCK" "$@"
	[[ $RC == 0 ]] || fail "peer client failed$(last_run)"
}
expect_ok() {
	as "$@"
	jcheck "$OUT" 'docs[0]["result"] == "OK"'
}
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

step "the daemon checks its rules on where a path really leads"
daemon_start --test-declared-peer --libvirt none
ok phctl acl add deny cid:7 /secret
ok phctl acl add allow '*' /
check_all
daemon_stop

step "a relay checks its own rules on the paths its parent resolves"
parent_start
STATE=$T/state-relay
mkdir -p "$STATE"
daemon_start --no-repo --upstream "unix:$L0" --test-declared-peer \
    --libvirt none
ok phctl acl add deny cid:7 /secret
ok phctl acl add allow '*' /
check_all
daemon_stop
parent_stop

pass
