#!/usr/bin/env bash
# The systemd units in packaging/systemd: `systemd-analyze verify` finds no
# problem in any of them (with ExecStart= pointing at the built binaries,
# since verify checks that the program exists), and portholed.service's
# offline security exposure stays at or below 2.0.
. "$(dirname "$0")/lib.sh"

command -v systemd-analyze >/dev/null 2>&1 ||
	fail "systemd-analyze not found; run scripts/install-deps.sh"

UNITS=$SRCDIR/packaging/systemd
MAX_EXPOSURE=2.0

step "the units are all there"
units=()
for u in "$UNITS"/*.service "$UNITS"/*.socket "$UNITS"/*.timer; do
	[[ -e $u ]] && units+=("$u")
done
for want in portholed.service portholed.socket portholed-relay.service; do
	[[ -f $UNITS/$want ]] || fail "missing $UNITS/$want"
done

step "each unit's ExecStart= names an installed program"
V=$T/verify
mkdir -p "$V"
for u in "${units[@]}"; do
	name=$(basename "$u")
	# The installed paths of our programs, mapped to the built ones.
	sed -e "s|^ExecStart=/usr/sbin/portholed\\b|ExecStart=$PORTHOLED|" \
	    -e "s|^ExecStart=/usr/bin/porthole\\b|ExecStart=$PORTHOLE|" \
	    "$u" >"$V/$name"
	if grep -E '^ExecStart=/usr/s?bin/porthole' "$V/$name"; then
		fail "$name: ExecStart= names an unknown program"
	fi
done

step "systemd-analyze verify reports nothing"
for u in "$V"/*; do
	run systemd-analyze verify --man=no "$u"
	# verify exits 0 on an unknown key; any message is a failure.
	[[ $RC == 0 && ! -s $OUT && ! -s $ERR ]] ||
		fail "systemd-analyze verify $(basename "$u")$(last_run)"
done

step "verify catches a misspelt key (the check above is real)"
sed 's/^ProtectHome=/ProtectHom=/' "$V/portholed.service" >"$T/typo.service"
run systemd-analyze verify --man=no "$T/typo.service"
[[ -s $ERR || $RC != 0 ]] || fail "a misspelt key went unnoticed$(last_run)"

for unit in portholed.service portholed-relay.service; do
	step "$unit: security exposure <= $MAX_EXPOSURE"
	run systemd-analyze security --offline=yes --no-pager "$UNITS/$unit"
	score=$(grep -oE "Overall exposure level for $unit: [0-9.]+" \
	    "$OUT" | grep -oE '[0-9.]+$')
	[[ -n $score ]] || fail "no exposure score$(last_run)"
	echo "exposure score: $score"
	awk -v s="$score" -v m="$MAX_EXPOSURE" 'BEGIN { exit !(s <= m) }' ||
		fail "exposure $score is above $MAX_EXPOSURE: $(grep '✗' "$OUT")"
done
# The same limit through systemd's own threshold check.
run systemd-analyze security --offline=yes --threshold=20 --no-pager \
    "$UNITS/portholed.service"
[[ $RC == 0 ]] || fail "systemd-analyze security --threshold=20 failed$(last_run)"

step "the socket unit listens on vsock port 7390"
assert_file_has "$UNITS/portholed.socket" "ListenStream=vsock::7390"
assert_file_has "$UNITS/portholed.service" "Type=notify"

step "the relay unit relays to the host and excludes portholed.service"
assert_file_has "$UNITS/portholed-relay.service" "Type=notify"
assert_file_has "$UNITS/portholed-relay.service" \
    "ExecStart=/usr/sbin/portholed --upstream vsock:2:7390"
assert_file_has "$UNITS/portholed-relay.service" \
    "Conflicts=portholed.service portholed.socket"

pass
