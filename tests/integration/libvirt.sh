#!/usr/bin/env bash
# portholed and libvirt, through libvirt's own test driver (a real libvirt
# connection to test:///$T/node.xml, held by the daemon): CIDs named after
# their domains in log lines, `portholectl queue` and the audit trail; rules
# by domain name and UUID; LIST hiding by domain; an unknown CID; `vm ls`,
# `vm enable` and `vm disable` read back through the daemon's connection
# (the test driver's state lives in that connection); libvirt unavailable
# at start, then coming back; and --libvirt none.
. "$(dirname "$0")/lib.sh"

QC=$LIB_DIR/queue_client.py
WEB1_UUID=11111111-2222-3333-4444-555555555555
WEB2_UUID=aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee

expect_denied() {	# PEER OP PATH RULE
	as "$1" "$2" "$3"
	jcheck "$OUT" 'docs[0]["result"] == "ERROR" and docs[0]["code"] == 6'
	assert_out_has "access denied by rule $4: "
}
listed() {		# PEER PATH
	as "$1" list "$2"
	python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(" ".join(d["names"]) if d["result"] == "OK" else "ERROR %d" % d["code"])' "$OUT"
}
status_has() {
	phctl status 2>/dev/null | grep -qF -- "$1"
}

# Two running guests with fixed CIDs, one defined but shut off without a
# vsock device. The test driver never resolves auto='yes'.
write_node() {
	cat >"$1" <<EOF
<node>
  <domain type='test'>
    <name>web1</name>
    <uuid>$WEB1_UUID</uuid>
    <memory>65536</memory>
    <os><type>hvm</type></os>
    <devices>
      <vsock model='virtio'><cid auto='no' address='5'/></vsock>
    </devices>
  </domain>
  <domain type='test'>
    <name>web2</name>
    <uuid>$WEB2_UUID</uuid>
    <memory>65536</memory>
    <os><type>hvm</type></os>
    <devices>
      <vsock model='virtio'><cid auto='no' address='6'/></vsock>
    </devices>
  </domain>
  <domain type='test' xmlns:test='http://libvirt.org/schemas/domain/test/1.0'>
    <name>db1</name>
    <memory>65536</memory>
    <os><type>hvm</type></os>
    <devices>
      <disk type='file' device='disk'>
        <source file='/var/lib/images/db1.img'/>
        <target dev='hda'/>
      </disk>
    </devices>
    <test:runstate>5</test:runstate>
  </domain>
</node>
EOF
}

mkdir -p "$REPO/tools" "$REPO/secret" "$REPO/web2only"
echo a >"$REPO/tools/a.txt"
echo s >"$REPO/secret/s.txt"
echo w >"$REPO/web2only/w.txt"
truncate -s 64M "$REPO/big"
write_node "$T/node.xml"

step "CID -> domain: log lines name the domain"
daemon_start -v --test-declared-peer --libvirt "test://$T/node.xml" \
    --stall-timeout 3
wait_for 20 status_has "libvirt:         connected to test://$T/node.xml (2 running domains with a vsock CID)" ||
	fail "not connected to libvirt: $(phctl status)"
assert_file_has "$DLOG" "libvirt: connected to test://$T/node.xml (2 running domains with a vsock CID)"
ok phctl --json status
jcheck "$OUT" 'docs[0]["libvirt"].startswith("connected to test://")'
expect_ok 5 get /tools/a.txt
assert_file_has "$DLOG" ",declared=5,vm=web1 op=GET path=/tools/a.txt result=OK bytes=2"
expect_ok 6 stat /tools/a.txt
assert_file_has "$DLOG" ",declared=6,vm=web2 op=STAT path=/tools/a.txt result=OK"

step "an unknown CID keeps its number only"
expect_ok 77 get /tools/a.txt
grep -qE 'declared=77 op=GET path=/tools/a.txt result=OK' "$DLOG" ||
	fail "no plain log line for CID 77"
assert_file_lacks "$DLOG" "declared=77,vm="

step "portholectl queue shows the domain"
python3 "$QC" "$SOCK" --timeout 60 "name=stall,peer=5,path=/big,read=stop,hold=6" \
    >"$T/stall.out" 2>&1 &
STALL_PID=$!
track "$STALL_PID"
wait_for 10 queue_has "declared:5,vm=web1" ||
	fail "the queue does not name web1: $(phctl queue)"
run phctl --json queue
jcheck "$OUT" 'docs[0]["active"][0]["vm"] == "web1" and docs[0]["active"][0]["peer"] == "declared:5"'
wait "$STALL_PID" || fail "stalled client failed: $(cat "$T/stall.out")"

step "rules by domain name and UUID; LIST hides by domain"
ok phctl acl add deny web1 /secret
ok phctl acl add allow $WEB2_UUID /web2only
ok phctl acl add deny '*' /web2only
expect_denied 5 get /secret/s.txt 1
expect_ok 6 get /secret/s.txt
expect_ok 77 get /secret/s.txt
expect_ok 6 get /web2only/w.txt
expect_denied 5 get /web2only/w.txt 3
expect_denied 77 stat /web2only 3
assert_eq "$(listed 5 /)" "big tools" "LIST / as web1"
assert_eq "$(listed 6 /)" "big secret tools web2only" "LIST / as web2"
assert_eq "$(listed 77 /)" "big secret tools" "LIST / as an unknown CID"
# The same domain by UUID, first in line now.
ok phctl acl add --at 1 allow $WEB1_UUID /secret
expect_ok 5 get /secret/s.txt
ok phctl acl rm 1
expect_denied 5 get /secret/s.txt 1
assert_file_has "$DLOG" ",declared=5,vm=web1 op=GET path=/secret/s.txt result=FORBIDDEN bytes=0 ms="

step "the audit trail names the domain"
ok phctl audit --domain web1
assert_out_has "cid=5 vm=web1 "
assert_out_has "op=GET path=/secret/s.txt result=FORBIDDEN"
assert_file_lacks "$OUT" "vm=web2"
ok phctl --json audit --domain $WEB2_UUID
jcheck "$OUT" 'len(docs[0]["entries"]) >= 3 and all(e["domain"] == "web2" and e["uuid"] == "'$WEB2_UUID'" and e["cid"] == 6 for e in docs[0]["entries"])'
ok phctl --json audit --domain cid:77
jcheck "$OUT" 'len(docs[0]["entries"]) >= 3 and all(e["domain"] is None and e["uuid"] is None for e in docs[0]["entries"])'
ok phctl audit --since 10m --domain web2
assert_out_has "vm=web2"

step "vm ls: every domain, its state, CID and porthole access"
ok phctl vm ls
grep -qE "^web1 +$WEB1_UUID +running +5 +enabled$" "$OUT" || fail "web1 line$(last_run)"
grep -qE "^web2 +$WEB2_UUID +running +6 +enabled$" "$OUT" || fail "web2 line$(last_run)"
grep -qE "^db1 +[0-9a-f-]{36} +shut off +- +disabled$" "$OUT" || fail "db1 line$(last_run)"
ok phctl --json vm ls
jcheck "$OUT" '[d["name"] for d in docs[0]["domains"]] == ["db1", "web1", "web2"]'
jcheck "$OUT" 'docs[0]["domains"][1] == {"name": "web1", "uuid": "'$WEB1_UUID'", "state": "running", "cid": 5, "persistent": True, "enabled": True}'
jcheck "$OUT" 'docs[0]["domains"][0]["cid"] is None and docs[0]["domains"][0]["enabled"] == False and docs[0]["domains"][0]["state"] == "shut off"'

step "vm enable adds the device to the persistent definition"
ok phctl vm enable db1
assert_out_has "db1: porthole access enabled: vsock device added to the persistent definition; this takes effect at the next boot of the domain"
ok phctl --json vm ls
jcheck "$OUT" 'docs[0]["domains"][0]["name"] == "db1" and docs[0]["domains"][0]["enabled"] == True and docs[0]["domains"][0]["cid"] is None'
ok phctl vm enable db1
assert_out_has "db1: porthole access is already enabled"
ok phctl --json vm enable db1
jcheck "$OUT" 'docs[0]["changed"] == False and docs[0]["enabled"] == True'
wait_for 10 grep -qF "libvirt: lifecycle event" "$DLOG" ||
	fail "no lifecycle event after defining db1"

step "vm disable removes it; a running domain keeps its CID until it reboots"
ok phctl vm disable web1
assert_out_has "web1: porthole access disabled: vsock device removed from the persistent definition; this takes effect at the next boot"
ok phctl --json vm ls
jcheck "$OUT" 'docs[0]["domains"][1]["name"] == "web1" and docs[0]["domains"][1]["enabled"] == False and docs[0]["domains"][1]["cid"] == 5'
expect_denied 5 get /secret/s.txt 1
assert_file_has "$DLOG" ",declared=5,vm=web1 op=GET path=/secret/s.txt result=FORBIDDEN"
ok phctl vm disable db1
ok phctl --json vm disable db1
jcheck "$OUT" 'docs[0]["changed"] == False and docs[0]["enabled"] == False'
ok phctl --json vm ls
jcheck "$OUT" '[d["enabled"] for d in docs[0]["domains"]] == [False, False, True]'
# By UUID as well.
ok phctl vm enable $WEB1_UUID
assert_out_has "porthole access enabled"
ok phctl --json vm ls
jcheck "$OUT" 'docs[0]["domains"][1]["enabled"] == True'

step "vm errors"
expect_rc 1 phctl vm enable nosuch
assert_err_has "no domain named nosuch"
expect_rc 1 phctl --json vm disable nosuch
jcheck "$ERR" 'docs[0]["error"] == "NOT_FOUND"'
expect_rc 2 phctl vm
expect_rc 2 phctl vm enable
expect_rc 2 phctl vm start web1
daemon_stop

step "libvirt unavailable at start: served by CID, said once, then back"
LATER=$T/later.xml
daemon_start -v --test-declared-peer --libvirt "test://$LATER"
wait_for 10 grep -qF "libvirt: cannot connect to test://$LATER" "$DLOG" ||
	fail "no line about libvirt being unavailable"
ok phctl status
assert_out_has "libvirt:         unavailable: test://$LATER"
expect_ok 5 get /tools/a.txt
assert_file_has "$DLOG" ",declared=5 op=GET path=/tools/a.txt result=OK"
# A name rule cannot match while libvirt is away.
expect_ok 5 get /secret/s.txt
expect_rc 1 phctl vm ls
assert_err_has "libvirt is unavailable at test://$LATER"
# Several retries, still one line.
sleep 4
assert_eq "$(grep -c "libvirt: cannot connect to test://$LATER" "$DLOG")" 1 \
    "lines about the outage"
write_node "$LATER"
wait_for 40 status_has "libvirt:         connected to test://$LATER" ||
	fail "libvirt did not come back: $(phctl status)"
assert_eq "$(grep -c "libvirt: now reachable: connected to test://$LATER (2 running domains with a vsock CID)" "$DLOG")" 1 \
    "lines about libvirt coming back"
expect_denied 5 get /secret/s.txt 1
assert_file_has "$DLOG" ",declared=5,vm=web1 op=GET path=/secret/s.txt result=FORBIDDEN"
ok phctl vm ls
assert_out_has "web2"
daemon_stop

step "no running domain with a vsock CID: an empty map"
cat >"$T/empty.xml" <<EOF
<node>
  <domain type='test' xmlns:test='http://libvirt.org/schemas/domain/test/1.0'>
    <name>off1</name>
    <memory>65536</memory>
    <os><type>hvm</type></os>
    <test:runstate>5</test:runstate>
  </domain>
</node>
EOF
daemon_start --test-declared-peer --libvirt "test://$T/empty.xml"
wait_for 20 status_has "libvirt:         connected to test://$T/empty.xml (0 running domains with a vsock CID)" ||
	fail "not connected to the empty node: $(phctl status)"
expect_ok 5 get /secret/s.txt
assert_file_has "$DLOG" ",declared=5 op=GET path=/secret/s.txt result=OK"
ok phctl --json vm ls
jcheck "$OUT" '[d["name"] for d in docs[0]["domains"]] == ["off1"] and docs[0]["domains"][0]["enabled"] == False'
ok phctl vm enable off1
ok phctl --json vm ls
jcheck "$OUT" 'docs[0]["domains"][0]["enabled"] == True'
daemon_stop

step "--libvirt none: CIDs only, vm commands unavailable"
daemon_start --test-declared-peer --libvirt none
ok phctl status
assert_out_has "libvirt:         disabled"
expect_rc 1 phctl vm ls
assert_err_has "libvirt is turned off (--libvirt none)"
expect_ok 5 get /secret/s.txt
assert_file_has "$DLOG" ",declared=5 op=GET path=/secret/s.txt result=OK"
daemon_stop

pass
