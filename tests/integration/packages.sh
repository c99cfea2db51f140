#!/usr/bin/env bash
# Packaging: scripts/build-debs.sh builds porthole-host and porthole-guest
# (lintian clean of errors), each .deb holds its binaries, man pages and
# completion and nothing of the other's, every file of a meson install lands
# in exactly one package, the man pages render without warnings and the
# completions parse and complete.
. "$(dirname "$0")/lib.sh"

for tool in dpkg-buildpackage dpkg-deb lintian scdoc man meson ninja rpmbuild; do
	command -v "$tool" >/dev/null 2>&1 ||
		fail "$tool not found; run scripts/install-deps.sh"
done
[[ -r /usr/share/bash-completion/bash_completion ]] ||
	fail "bash-completion is not installed; run scripts/install-deps.sh"

# The units go where systemd's pkg-config file says, as in the meson install.
UNITS=$(pkg-config --variable=systemdsystemunitdir systemd 2>/dev/null ||
	echo /usr/lib/systemd/system)
UNITS=${UNITS#/}
HOST_FILES=(
	usr/sbin/portholed
	usr/sbin/portholectl
	usr/share/man/man8/portholed.8
	usr/share/man/man8/portholectl.8
	usr/share/man/man5/portholed.conf.5
	usr/share/bash-completion/completions/portholectl
	etc/porthole/portholed.conf
	"$UNITS/portholed.service"
	"$UNITS/portholed.socket"
	"$UNITS/portholed-relay.service"
)
GUEST_FILES=(
	usr/bin/porthole
	usr/share/man/man1/porthole.1
	usr/share/man/man5/porthole-sync.5
	usr/share/bash-completion/completions/porthole
	"$UNITS/porthole-sync.service"
	"$UNITS/porthole-sync.timer"
)

# Lists the files and symlinks under a root, relative, sorted, with the
# .gz that dh_compress adds to man pages taken off.
list_tree() {
	(cd "$1" && find . \( -type f -o -type l \) | sed -e 's|^\./||' \
	    -e 's|^\(usr/share/man/.*\)\.gz$|\1|' | LC_ALL=C sort)
}

# assert_listed LIST FILE...: each FILE must be a line of LIST.
assert_listed() {
	local list=$1 f
	shift
	for f in "$@"; do
		grep -qxF "$f" "$list" || fail "$f missing from $(basename "$list"):
$(cat "$list")"
	done
}

# assert_unlisted LIST FILE...: no FILE may be a line of LIST.
assert_unlisted() {
	local list=$1 f
	shift
	for f in "$@"; do
		! grep -qxF "$f" "$list" || fail "$f must not be in $(basename "$list")"
	done
}

step "scripts/build-debs.sh builds both packages, lintian has no errors"
run "$SRCDIR/scripts/build-debs.sh" -o "$T/debs"
[[ $RC == 0 ]] || fail "build-debs.sh failed$(last_run)"
sed -n 's/^build-debs: //p' "$ERR"
shopt -s nullglob
host_deb=("$T"/debs/porthole-host_*.deb)
guest_deb=("$T"/debs/porthole-guest_*.deb)
((${#host_deb[@]} == 1)) || fail "expected one porthole-host .deb: $(ls "$T/debs")"
((${#guest_deb[@]} == 1)) || fail "expected one porthole-guest .deb: $(ls "$T/debs")"

step "each .deb holds its own files and none of the other's"
mkdir -p "$T/root-host" "$T/root-guest"
dpkg-deb -x "${host_deb[0]}" "$T/root-host" || fail "dpkg-deb -x ${host_deb[0]}"
dpkg-deb -x "${guest_deb[0]}" "$T/root-guest" || fail "dpkg-deb -x ${guest_deb[0]}"
list_tree "$T/root-host" >"$T/host.list"
list_tree "$T/root-guest" >"$T/guest.list"
assert_listed "$T/host.list" "${HOST_FILES[@]}"
assert_listed "$T/guest.list" "${GUEST_FILES[@]}"
assert_unlisted "$T/host.list" "${GUEST_FILES[@]}"
assert_unlisted "$T/guest.list" "${HOST_FILES[@]}"
both=$(LC_ALL=C comm -12 "$T/host.list" "$T/guest.list" | grep -v '^usr/share/doc/' || true)
[[ -z $both ]] || fail "files in both packages: $both"
dpkg-deb -f "${host_deb[0]}" Package Architecture Depends >"$T/host.fields"
assert_file_has "$T/host.fields" "Package: porthole-host"
assert_file_has "$T/host.fields" "libuv1"
# The account and the config file are set up on installation.
dpkg-deb -e "${host_deb[0]}" "$T/host.ctl" || fail "dpkg-deb -e ${host_deb[0]}"
assert_file_has "$T/host.ctl/conffiles" "/etc/porthole/portholed.conf"
assert_file_has "$T/host.ctl/postinst" "systemd-sysusers"
# The relay unit conflicts with portholed.service: installed, never started.
if grep -q "invoke.*portholed-relay" "$T/host.ctl/postinst"; then
	fail "porthole-host's postinst starts portholed-relay.service"
fi
dpkg-deb -e "${guest_deb[0]}" "$T/guest.ctl" || fail "dpkg-deb -e ${guest_deb[0]}"
assert_file_has "$T/guest.ctl/postinst" "porthole-sync.timer"
# Installing porthole-guest must not run a sync.
if grep -q "invoke.*start.*porthole-sync.service" "$T/guest.ctl/postinst"; then
	fail "porthole-guest's postinst starts porthole-sync.service"
fi

step "the packaged binaries run"
ok "$T/root-guest/usr/bin/porthole" --version
assert_out_has "porthole "
ok "$T/root-host/usr/sbin/portholed" --version
ok "$T/root-host/usr/sbin/portholectl" --help
assert_out_has "repo set"

step "scripts/build-rpm.sh builds the same two packages as RPMs"
run "$SRCDIR/scripts/build-rpm.sh" -o "$T/rpms"
[[ $RC == 0 ]] || fail "build-rpm.sh failed$(last_run)"
host_rpm=("$T"/rpms/porthole-host-*.rpm)
guest_rpm=("$T"/rpms/porthole-guest-*.rpm)
((${#host_rpm[@]} == 1 && ${#guest_rpm[@]} == 1)) ||
	fail "expected one RPM each: $(ls "$T/rpms")"
# rpm lists directories too, and man pages may be compressed.
rpm -qlp "${host_rpm[0]}" | sed -e 's|^/||' -e 's|\.gz$||' >"$T/host-rpm.list"
rpm -qlp "${guest_rpm[0]}" | sed -e 's|^/||' -e 's|\.gz$||' >"$T/guest-rpm.list"
assert_listed "$T/host-rpm.list" "${HOST_FILES[@]}"
assert_listed "$T/guest-rpm.list" "${GUEST_FILES[@]}"
assert_unlisted "$T/host-rpm.list" "${GUEST_FILES[@]}"
assert_unlisted "$T/guest-rpm.list" "${HOST_FILES[@]}"
rpm -qp --configfiles "${host_rpm[0]}" >"$T/host-rpm.conf"
assert_file_has "$T/host-rpm.conf" "/etc/porthole/portholed.conf"

step "meson install --destdir installs the same files"
run meson setup "$T/build" "$SRCDIR" -Dtests=false --prefix=/usr --buildtype=plain
[[ $RC == 0 ]] || fail "meson setup failed$(last_run)"
run ninja -C "$T/build"
[[ $RC == 0 ]] || fail "ninja failed$(last_run)"
run meson install -C "$T/build" --destdir "$T/dest"
[[ $RC == 0 ]] || fail "meson install failed$(last_run)"
list_tree "$T/dest" >"$T/dest.list"
assert_listed "$T/dest.list" "${HOST_FILES[@]}" "${GUEST_FILES[@]}"
# Whatever the install produces (units, config) must be in one package.
LC_ALL=C sort -u "$T/host.list" "$T/guest.list" >"$T/debs.list"
lost=$(LC_ALL=C comm -23 "$T/dest.list" "$T/debs.list")
[[ -z $lost ]] || fail "installed by meson but in no package: $lost"

step "man pages render without warnings"
pages=("$T"/dest/usr/share/man/man*/*)
((${#pages[@]} == 5)) || fail "expected 5 man pages, got: ${pages[*]}"
for page in "${pages[@]}"; do
	name=$(basename "$page")
	if command -v mandoc >/dev/null 2>&1; then
		mandoc -T lint -W warning "$page" >"$T/lint" 2>&1 ||
			fail "mandoc -T lint $name: $(cat "$T/lint")"
	fi
	LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -E UTF-8 -l "$page" \
	    >"$T/render" 2>"$T/render.err" || fail "man -l $name failed: $(cat "$T/render.err")"
	[[ ! -s $T/render.err ]] || fail "man -l $name warns: $(cat "$T/render.err")"
	assert_file_has "$T/render" "NAME"
	assert_file_has "$T/render" "SEE ALSO"
	# A stray scdoc markup character shows up as a literal in the text.
	if grep -n '\*[a-z-]\+\*\|\\fB\|\\f' "$T/render" >"$T/stray"; then
		fail "$name has unrendered markup: $(cat "$T/stray")"
	fi
done
# The compressed pages in the packages render too.
for page in "$T"/root-*/usr/share/man/man*/*.gz; do
	LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -l "$page" >/dev/null 2>"$T/render.err" ||
		fail "man -l $page failed"
	[[ ! -s $T/render.err ]] || fail "man -l $page warns: $(cat "$T/render.err")"
done

step "the completions parse and complete"
for c in porthole portholectl; do
	bash -n "$T/dest/usr/share/bash-completion/completions/$c" ||
		fail "bash -n on the $c completion"
done
cat >"$T/complete.bash" <<'SH'
source /usr/share/bash-completion/bash_completion
source "$1/porthole"
source "$1/portholectl"
# c FUNCTION WORD...: completes the last WORD, prints the candidates.
c() {
	local fn=$1
	shift
	COMP_WORDS=("$@")
	COMP_CWORD=$(($# - 1))
	COMP_LINE="$*"
	COMP_POINT=${#COMP_LINE}
	COMPREPLY=()
	"$fn"
	echo "${COMPREPLY[*]}"
}
c _porthole porthole ''
c _porthole porthole -e unix:/x ''
c _porthole porthole get --re
c _porthole porthole ls -
c _porthole porthole sync --d
c _portholectl portholectl ''
c _portholectl portholectl -s /x repo ''
SH
run bash "$T/complete.bash" "$T/dest/usr/share/bash-completion/completions"
[[ $RC == 0 ]] || fail "completion script failed$(last_run)"
printf '%s\n' "get stat ls ping sync" "get stat ls ping sync" "--resume" \
    "-l --long --json --wait" "--dry-run" "status queue repo cache vm acl audit" \
    "get set ls scan verify" >"$T/complete.want"
diff -u "$T/complete.want" "$OUT" || fail "completions differ from the expected ones"

pass
