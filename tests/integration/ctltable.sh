#!/usr/bin/env bash
# The control command table (common/ctltab.h) and everything derived from
# it: portholectl --help, the man page, the bash completion and the
# daemon's dispatch name every command; an unknown command is refused with
# the list; portholectl's text is rendered from the daemon's JSON reply.
. "$(dirname "$0")/lib.sh"

PEER=$LIB_DIR/ctl_peer.py
SCD=$SRCDIR/docs/portholectl.8.scd
COMPLETION=$SRCDIR/docs/completion/portholectl.bash

"$CTLTAB_DUMP" >"$T/table" || fail "ctltab_dump failed"
(($(wc -l <"$T/table") >= 18)) || fail "the table is short: $(cat "$T/table")"

step "portholectl --help lists every command in the table"
ok "$PORTHOLECTL" --help
while IFS=$'\t' read -r words min max syn; do
	awk -v s="  $syn" 'index($0, s) == 1 { found = 1 } END { exit !found }' \
	    "$OUT" || fail "--help lacks '$syn'$(last_run)"
done <"$T/table"

step "the man page names every command"
while IFS=$'\t' read -r words min max syn; do
	grep -qxE "\*$words\*( .*)?" "$SCD" ||
		fail "portholectl.8.scd has no entry for '$words'"
done <"$T/table"

step "the bash completion offers every command word"
cat >"$T/complete.bash" <<'SH'
source /usr/share/bash-completion/bash_completion
source "$1"
# c WORD...: completes the last WORD, prints the candidates.
c() {
	COMP_WORDS=(portholectl "$@")
	COMP_CWORD=$#
	COMP_LINE="portholectl $*"
	COMP_POINT=${#COMP_LINE}
	COMPREPLY=()
	_portholectl
	echo "${COMPREPLY[*]}"
}
while IFS=$'\t' read -r words _; do
	read -ra w <<<"$words"
	# Each word is offered after the ones before it.
	for ((i = 0; i < ${#w[@]}; i++)); do
		got=" $(c "${w[@]:0:i}" '') "
		[[ $got == *" ${w[i]} "* ]] || echo "MISSING: '${w[i]}' after '${w[*]:0:i}'"
	done
done <"$2"
SH
[[ -f /usr/share/bash-completion/bash_completion ]] ||
	fail "bash-completion is not installed"
run bash "$T/complete.bash" "$COMPLETION" "$T/table"
[[ $RC == 0 ]] || fail "completion script failed$(last_run)"
! grep -q MISSING "$OUT" || fail "the completion lacks words: $(cat "$OUT")"

step "an unknown command: usage error with the list of commands"
expect_rc 2 "$PORTHOLECTL" -s "$T/none.sock" frobnicate
assert_err_has "unknown command 'frobnicate'"
while IFS=$'\t' read -r words min max syn; do
	assert_err_has "$syn"
done <"$T/table"
expect_rc 2 "$PORTHOLECTL" -s "$T/none.sock" repo frob
assert_err_has "unknown command 'repo frob'"

daemon_start

step "the daemon dispatches every command in the table"
# One operand too many: the daemon's own arity check names the command's
# synopsis, so every entry is known to its dispatch. Nothing runs.
while IFS=$'\t' read -r words min max syn; do
	read -ra w <<<"$words"
	args=("${w[@]}")
	for ((i = 0; i <= max; i++)); do args+=(x); done
	run python3 "$PEER" send "$CTL" "${args[@]}"
	[[ $RC == 0 ]] || fail "ctl_peer send failed$(last_run)"
	grep -qx 'status=17' "$OUT" || fail "'${args[*]}': not USAGE$(last_run)"
	assert_out_has "wrong number of arguments; usage: $syn\""
done <"$T/table"
run python3 "$PEER" send "$CTL" frobnicate
grep -qx 'status=17' "$OUT" || fail "frobnicate: not USAGE$(last_run)"
assert_out_has '"error":"USAGE"'
assert_out_has "unknown command 'frobnicate'; commands: status, queue, repo get"
jcheck <(tail -n +2 "$OUT") 'docs[0]["message"].endswith("audit [--since T] [--domain D] [--limit N]")'

step "text and JSON come from the same reply"
ok phctl --json status
cp "$OUT" "$T/status.json"
ok phctl status
repo=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["repository"])' "$T/status.json")
assert_eq "$repo" "$REPO" "repository in status --json"
assert_out_has "repository:      $repo"
served=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["requests_served"])' "$T/status.json")
assert_out_has "requests served: $served"
daemon_stop

# serve STATUS JSON ARGS...: portholectl ARGS against a fake daemon that
# answers STATUS and JSON; its output lands in $OUT and $ERR.
serve() {
	local status=$1 body=$2
	shift 2
	printf '%s\n' "$body" >"$T/body"
	rm -f "$T/fake.sock"
	python3 "$PEER" serve "$T/fake.sock" "$status" "$T/body" >"$T/got" &
	local pid=$!
	track "$pid"
	wait_for 10 test -S "$T/fake.sock" || fail "the fake daemon did not start"
	run "$PORTHOLECTL" -s "$T/fake.sock" "$@"
	wait "$pid" || fail "the fake daemon failed"
}

step "portholectl renders the reply it got, and --json passes it through"
STATUS='{"version":"9.8.7-fake","uptime_s":90061,"listeners":["unix:/a","vsock:-1:5000"],"vhost_user":[{"path":"/v.sock","cid":7,"vm":"web 1","frontend":true,"running":true,"connections":2,"bytes_to_guest":99}],"repository":null,"libvirt":"disabled","acl_rules":3,"acl_default":"deny","connections":4,"requests_served":12345,"bytes_sent":678}'
serve 0 "$STATUS" status
assert_eq "$RC" 0 "portholectl status against the fake daemon"
assert_eq "$(cat "$T/got")" status "the request's words"
printf '%s\n' "portholed 9.8.7-fake" "uptime:          1d 1h 1m 1s" \
    "listeners:       unix:/a, vsock:-1:5000" \
    "vhost-user:      /v.sock (cid 7, vm web 1): running, 2 connections, 99 bytes to the guest" \
    "repository:      (none)" "libvirt:         disabled" \
    "access rules:    3, default deny" "connections:     4" \
    "requests served: 12345" "bytes sent:      678" >"$T/want"
diff -u "$T/want" "$OUT" || fail "status text differs from its JSON reply"
serve 0 "$STATUS" --json status
assert_eq "$(cat "$OUT")" "$STATUS" "status --json"

step "an error reply prints its message, exit code by status"
serve 5 '{"error":"NOT_FOUND","message":"no rule 9 (see acl ls)"}' acl rm 9
assert_eq "$RC" 1 "exit code of an error reply"
assert_eq "$(cat "$ERR")" "no rule 9 (see acl ls)" "error text"
[[ ! -s $OUT ]] || fail "an error went to stdout$(last_run)"
serve 0 '{"domains":[]}' vm ls
assert_eq "$RC" 1 "exit code of a reply that lacks a field"
assert_err_has "lacks a field vm ls needs"

pass
