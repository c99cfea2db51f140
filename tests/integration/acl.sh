#!/usr/bin/env bash
# Access rules and the audit trail, without libvirt: rules by CID (guests
# played by --test-declared-peer clients) and for every peer, first match
# wins, whole-component prefixes, LIST hiding what a peer may not read,
# STAT refused too, the default policy (option and config file), rules kept
# across restarts and re-read on SIGHUP, `portholectl audit` with --since,
# --domain, --limit, --json and retention by rows and by age, and a relay
# filtering the LIST pages its parent sends.
. "$(dirname "$0")/lib.sh"

# expect_denied PEER OP PATH [RULE]: refused by RULE, or the default.
expect_denied() {
	local peer=$1 op=$2 path=$3 rule=${4:-}
	as "$peer" "$op" "$path"
	jcheck "$OUT" 'docs[0]["result"] == "ERROR" and docs[0]["code"] == 6'
	if [[ -n $rule ]]; then
		assert_out_has "access denied by rule $rule: "
	else
		assert_out_has "access denied by the default policy: "
	fi
}

# listed PEER PATH: the names a LIST shows that guest, space separated.
listed() {
	as "$1" list "$2"
	python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(" ".join(d["names"]) if d["result"] == "OK" else "ERROR %d" % d["code"])' "$OUT"
}

mkdir -p "$REPO/tools/sub" "$REPO/secret/pub" "$REPO/pub"
echo a >"$REPO/tools/a.txt"
echo b >"$REPO/tools/sub/b.txt"
echo x >"$REPO/toolsx"
echo s >"$REPO/secret/s.txt"
echo p >"$REPO/secret/pub/p.txt"
echo u >"$REPO/pub/u.txt"

step "no rules: everything is allowed, for every peer"
daemon_start --test-declared-peer --libvirt none
ok phctl acl ls
assert_out_has "0 rules, first match wins; default policy: allow"
ok phctl --json acl ls
jcheck "$OUT" 'docs[0] == {"default": "allow", "rules": []}'
expect_ok 5 get /secret/s.txt
expect_ok 5 stat /secret
assert_eq "$(listed 5 /)" "pub secret tools toolsx" "LIST / without rules"

step "bad rules are refused (exit 2) and change nothing"
expect_rc 2 phctl acl add permit cid:5 /x
assert_err_has "invalid action 'permit'"
expect_rc 2 phctl acl add deny cid:0 /x
assert_err_has "invalid CID"
expect_rc 2 phctl acl add deny cid:5 ../x
assert_err_has "climbs above the root"
expect_rc 2 phctl acl add deny a/b /x
assert_err_has "invalid match"
expect_rc 2 phctl acl add deny cid:5
expect_rc 2 phctl acl add --at 0 deny cid:5 /x
expect_rc 2 phctl acl add --at 2 deny cid:5 /x
assert_err_has "past the end"
expect_rc 1 phctl acl rm 1
assert_err_has "no rule 1"
expect_rc 2 phctl acl rm x
expect_rc 2 phctl acl frobnicate
ok phctl acl ls
assert_out_has "0 rules"

step "a deny rule for one CID, over whole path components"
ok phctl acl add deny cid:5 /secret
assert_out_has "rule 1 added: deny cid:5 /secret"
expect_denied 5 get /secret/s.txt 1
expect_denied 5 stat /secret 1
expect_denied 5 stat /secret/pub/p.txt 1
expect_denied 5 list /secret 1
expect_denied 5 get //secret/./pub/../s.txt 1
expect_ok 5 get /tools/a.txt
expect_ok 7 get /secret/s.txt
ok phctl acl add deny cid:5 /tools
expect_denied 5 get /tools/sub/b.txt 2
expect_ok 5 get /toolsx
expect_ok 5 stat /toolsx

step "a denied path answers the same whether it exists or not"
expect_denied 5 get /secret/missing 1
expect_denied 5 stat /tools/nothing/here 2

step "LIST hides what the peer may not read"
assert_eq "$(listed 5 /)" "pub toolsx" "LIST / as CID 5"
assert_eq "$(listed 7 /)" "pub secret tools toolsx" "LIST / as CID 7"
assert_eq "$(listed 5 /secret)" "ERROR 6" "LIST /secret as CID 5"

step "first match wins: an allow inserted before the deny"
ok phctl acl add --at 1 allow cid:5 /secret/pub
assert_out_has "rule 1 added: allow cid:5 /secret/pub"
ok phctl acl ls
assert_out_has "3 rules"
grep -qE '^ +1  allow  cid:5 +/secret/pub$' "$OUT" || fail "rule 1$(last_run)"
grep -qE '^ +2  deny   cid:5 +/secret$' "$OUT" || fail "rule 2$(last_run)"
grep -qE '^ +3  deny   cid:5 +/tools$' "$OUT" || fail "rule 3$(last_run)"
expect_ok 5 get /secret/pub/p.txt
assert_eq "$(listed 5 /secret/pub)" "p.txt" "LIST /secret/pub as CID 5"
expect_denied 5 get /secret/s.txt 2
# The way to the allowed subtree shows, and nothing beside it.
assert_eq "$(listed 5 /)" "pub secret toolsx" "LIST / as CID 5 with the allow"
assert_eq "$(listed 5 /secret)" "pub" "LIST /secret as CID 5 with the allow"
expect_ok 5 stat /secret
expect_denied 5 get /secret 2
ok phctl --json acl ls
jcheck "$OUT" '[r["position"] for r in docs[0]["rules"]] == [1, 2, 3] and docs[0]["rules"][0] == {"position": 1, "action": "allow", "kind": "cid", "match": "cid:5", "prefix": "/secret/pub"}'

step "a rule for every peer, and peers without a CID"
ok phctl acl add deny '*' /pub
expect_denied 7 get /pub/u.txt 4
expect_denied 5 get /pub/u.txt 4
# The plain client is a unix peer: no CID, so only '*' rules apply to it.
expect_rc 4 ph get /pub/u.txt "$T/u.txt"
assert_err_has "access denied by rule 4"
assert_no_file "$T/u.txt"
ok ph get /secret/s.txt "$T/s.txt"
assert_same_file "$T/s.txt" "$REPO/secret/s.txt"
run ph ls /
assert_file_lacks "$OUT" "pub"
assert_file_has "$OUT" "secret"

step "removing a rule moves the later ones up"
ok phctl acl rm 1
assert_out_has "rule 1 removed: allow cid:5 /secret/pub"
expect_denied 5 get /secret/pub/p.txt 1
assert_eq "$(listed 5 /)" "toolsx" "LIST / as CID 5 after the allow went"
expect_denied 7 get /pub/u.txt 3
ok phctl --json acl rm 3
jcheck "$OUT" 'docs[0]["removed"]["match"] == "*" and docs[0]["removed"]["prefix"] == "/pub"'
expect_ok 7 get /pub/u.txt

step "denials are logged with the rule"
assert_file_has "$DLOG" "declared=5 op=GET path=/secret/s.txt result=FORBIDDEN bytes=0"
assert_file_has "$DLOG" "denied_by=rule:2"
assert_file_has "$DLOG" "access rule 1 added: allow cid:5 /secret/pub by control peer="
assert_file_has "$DLOG" "op=CTL cmd=acl,add,--at,1,allow,cid:5,/secret/pub result=OK"

step "the rules survive a restart"
daemon_stop
daemon_start --test-declared-peer --libvirt none
ok phctl acl ls
assert_out_has "2 rules"
expect_denied 5 get /secret/s.txt 1
expect_denied 5 get /tools/a.txt 2

step "SIGHUP re-reads rules changed in the state database"
python3 - "$STATE/state.db" <<'EOF' || fail "cannot edit the state database"
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
db.execute("DELETE FROM acl WHERE position = 2")
db.commit()
EOF
# Not yet: the cached rules still apply.
expect_denied 5 get /tools/a.txt 2
kill -HUP "$DAEMON_PID"
wait_for 10 grep -qF "reloaded: 1 access rule, default allow" "$DLOG" ||
	fail "no reload line after SIGHUP"
expect_ok 5 get /tools/a.txt
expect_denied 5 get /secret/s.txt 1

step "a rule row that cannot be valid is refused on reload; the old rules stay"
python3 - "$STATE/state.db" <<'EOF' || fail "cannot edit the state database"
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
db.execute("INSERT INTO acl (position, action, kind, match, prefix) "
           "VALUES (2, 'allow', 'cid', 'zero', '.')")
db.commit()
EOF
kill -HUP "$DAEMON_PID"
wait_for 10 grep -qF "reload: cannot read the access rules: access rule 2 in the state database is not valid; keeping the 1 loaded" "$DLOG" ||
	fail "no warning for the bad rule"
expect_denied 5 get /secret/s.txt 1
daemon_serving
daemon_stop
# A daemon does not start on rules it cannot read.
run "$PORTHOLED" -l "unix:$SOCK" -c "$CTL" --state-dir "$STATE" \
    --cache-dir "$CACHE" -r "$REPO" --libvirt none
assert_eq "$RC" 1 "exit status with a bad rule in the state database"
assert_err_has "cannot read the access rules: access rule 2 in the state database is not valid"
python3 - "$STATE/state.db" <<'EOF' || fail "cannot edit the state database"
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
db.execute("DELETE FROM acl WHERE match = 'zero'")
db.commit()
EOF

step "default deny, from the option and from the config file"
daemon_start --test-declared-peer --libvirt none --acl-default deny
ok phctl acl ls
assert_out_has "default policy: deny"
ok phctl status
assert_out_has "access rules:    1, default deny"
expect_denied 7 get /pub/u.txt
expect_denied 5 get /secret/s.txt 1
ok phctl acl add allow cid:7 /pub
expect_ok 7 get /pub/u.txt
# The root is listable as the way to /pub, showing only that.
assert_eq "$(listed 7 /)" "pub" "LIST / as CID 7, default deny"
expect_ok 7 stat /
expect_denied 7 get /toolsx
expect_denied 7 list /tools
expect_rc 4 ph stat /pub
daemon_stop
printf '[access]\nacl-default = deny\n' >"$T/deny.conf"
daemon_start --test-declared-peer --libvirt none --config "$T/deny.conf"
expect_denied 8 get /tools/a.txt
daemon_stop
printf '[access]\nacl-default = maybe\n' >"$T/bad.conf"
expect_rc 1 "$PORTHOLED" --config "$T/bad.conf" --check-config
assert_err_has "bad.conf:2: invalid acl-default 'maybe' (allow or deny)"
expect_rc 2 "$PORTHOLED" --acl-default maybe --check-config
expect_rc 2 "$PORTHOLED" --audit-max-rows -1 --check-config
expect_rc 2 "$PORTHOLED" --audit-max-days 40000 --check-config

step "audit: every GET, STAT and LIST, newest last"
# Start afresh so the counts below are exact.
STATE=$T/state-audit
mkdir -p "$STATE"
daemon_start --test-declared-peer --libvirt none
ok phctl acl add deny cid:5 /secret
expect_ok 5 get /tools/a.txt
expect_denied 5 get /secret/s.txt 1
expect_ok 6 stat /pub/u.txt
expect_ok 6 list /
as 6 get /missing
ok phctl audit
# daemon_start's ping is not a file request: not audited.
assert_eq "$(grep -c ' op=' "$OUT")" 5 "audit rows"
head -n 1 "$OUT" | grep -qE '^20[0-9]{2}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z cid=5 vm=- peer=unix:uid=[0-9]+,pid=[0-9]+,declared=5 op=GET path=/tools/a.txt result=OK bytes=2 ms=[0-9]+$' ||
	fail "first audit row$(last_run)"
assert_out_has "cid=5 vm=- "
assert_out_has "op=GET path=/secret/s.txt result=FORBIDDEN bytes=0"
assert_out_has "cid=6 vm=- "
assert_out_has "op=GET path=/missing result=NOT_FOUND"
assert_file_lacks "$OUT" "op=PING"
ok phctl --json audit
jcheck "$OUT" 'len(docs[0]["entries"]) == 5 and docs[0]["truncated"] == False'
jcheck "$OUT" '[e["op"] for e in docs[0]["entries"]] == ["GET", "GET", "STAT", "LIST", "GET"]'
jcheck "$OUT" 'docs[0]["entries"][0]["cid"] == 5 and docs[0]["entries"][0]["domain"] is None and docs[0]["entries"][0]["bytes"] == 2 and docs[0]["entries"][0]["path"] == "/tools/a.txt"'
jcheck "$OUT" 'all(e["time"].endswith("Z") and e["time_ms"] > 1600000000000 for e in docs[0]["entries"])'

step "audit --domain, --limit, --since"
ok phctl audit --domain cid:6
assert_eq "$(grep -c ' op=' "$OUT")" 3 "rows for cid:6"
assert_file_lacks "$OUT" "cid=5"
ok phctl --json audit --domain=cid:5 --limit 1
jcheck "$OUT" 'len(docs[0]["entries"]) == 1 and docs[0]["entries"][0]["result"] == "FORBIDDEN" and docs[0]["truncated"] == True'
ok phctl audit --limit 2
assert_eq "$(grep -c ' op=' "$OUT")" 2 "rows with --limit 2"
assert_out_has "older entries not shown (--limit 2)"
ok phctl audit --since 1h
assert_eq "$(grep -c ' op=' "$OUT")" 5 "rows of the last hour"
ok phctl audit --since 2999-01-01
assert_eq "$(grep -c ' op=' "$OUT")" 0 "rows from the future"
ok phctl audit --since 2000-01-01T00:00:00Z --domain nosuch
assert_eq "$(grep -c ' op=' "$OUT")" 0 "rows of an unknown domain"
run phctl --json audit
cut_ms=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["entries"][2]["time_ms"])' "$OUT")
cut=$(python3 -c 'import datetime,sys; print(datetime.datetime.fromtimestamp(int(sys.argv[1]) / 1000, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z")' "$cut_ms")
ok phctl audit --since "$cut"
[[ $(grep -c ' op=' "$OUT") -ge 3 ]] || fail "--since $cut$(last_run)"
assert_file_lacks "$OUT" "path=/tools/a.txt"
expect_rc 2 phctl audit --since yesterday
assert_err_has "invalid --since 'yesterday'"
expect_rc 2 phctl audit --limit 0
expect_rc 2 phctl audit --domain cid:x
expect_rc 2 phctl audit --bogus
expect_rc 2 phctl audit --since

step "audit rows are written in batches, also when the daemon stops"
expect_ok 6 get /pub/u.txt
daemon_stop
python3 - "$STATE/state.db" <<'EOF' || fail "the last request is not in the audit table"
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
n = db.execute("SELECT count(*) FROM audit WHERE op = 'GET' AND "
               "path = '/pub/u.txt'").fetchone()[0]
sys.exit(0 if n == 1 else 1)
EOF

step "retention by rows"
daemon_start --test-declared-peer --libvirt none --audit-max-rows 4
for i in 1 2 3 4 5 6; do
	expect_ok 9 stat /tools/a.txt
done
expect_ok 9 get /toolsx
ok phctl audit
assert_eq "$(grep -c ' op=' "$OUT")" 4 "rows kept with --audit-max-rows 4"
assert_out_has "path=/toolsx"
daemon_stop

step "retention by age"
python3 - "$STATE/state.db" <<'EOF' || fail "cannot age the audit rows"
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
# Three days old, all of them.
db.execute("UPDATE audit SET time_ms = time_ms - 3 * 86400 * 1000")
db.commit()
EOF
daemon_start --test-declared-peer --libvirt none --audit-max-days 2
ok phctl audit --since 4d
assert_eq "$(grep -c ' op=' "$OUT")" 4 "old rows before the next flush"
expect_ok 9 get /tools/a.txt
ok phctl audit --since 4d
assert_eq "$(grep -c ' op=' "$OUT")" 1 "rows after a flush with --audit-max-days 2"
assert_out_has "path=/tools/a.txt"
daemon_stop

step "--audit-max-rows 0 turns the audit trail off"
daemon_start --test-declared-peer --libvirt none --audit-max-rows 0
expect_ok 9 get /tools/a.txt
expect_rc 1 phctl audit
assert_err_has "the audit trail is off"
daemon_stop

step "a relay applies its own rules to the pages its parent lists"
parent_start
STATE=$T/state-relay
mkdir -p "$STATE"
daemon_start --no-repo --upstream "unix:$L0" --test-declared-peer \
    --libvirt none
ok phctl acl add deny cid:5 /secret
ok phctl acl add deny '*' /tools/sub
assert_eq "$(listed 5 /)" "pub tools toolsx" "LIST / through the relay as CID 5"
assert_eq "$(listed 6 /)" "pub secret tools toolsx" "LIST / through the relay as CID 6"
assert_eq "$(listed 6 /tools)" "a.txt" "LIST /tools through the relay"
expect_denied 5 get /secret/s.txt 1
expect_ok 6 get /secret/s.txt
daemon_stop
parent_stop

pass
