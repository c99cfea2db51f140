#!/usr/bin/env bash
# Builds the RPMs porthole-host and porthole-guest from
# packaging/rpm/porthole.spec with rpmbuild.
#
#   scripts/build-rpm.sh [-o OUTDIR]
#
# On an RPM distribution the spec builds as it is. On Debian (package rpm)
# the meson and systemd macros of those distributions are missing, so this
# script supplies plain equivalents, and build dependencies are not checked
# against the (empty) RPM database. The .rpms end up in OUTDIR (default
# build/rpms/ in the source tree).
set -euo pipefail

say() { printf 'build-rpm: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUTDIR=$ROOT/build/rpms
SPEC=$ROOT/packaging/rpm/porthole.spec

while getopts 'o:h' opt; do
	case $opt in
	o) OUTDIR=$OPTARG ;;
	h) sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) exit 2 ;;
	esac
done
shift $((OPTIND - 1))
(($# == 0)) || die "unexpected argument: $1"
command -v rpmbuild >/dev/null 2>&1 || die "rpmbuild not found (Debian: apt-get install rpm)"

version=$(sed -n 's/^Version:[[:space:]]*//p' "$SPEC")
work=$(mktemp -d "${TMPDIR:-/tmp}/porthole-rpm.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/SOURCES" "$work/porthole-$version"

# Copy the sources the meson build uses: not version control, build
# output, the benchmarks (not part of the build, and large) or leftovers.
"$ROOT/scripts/copy-source.sh" "$work/porthole-$version"
tar -C "$work" -czf "$work/SOURCES/porthole-$version.tar.gz" "porthole-$version"

args=(--define "_topdir $work")
if [[ -z $(rpm --eval '%{?meson}') ]]; then
	# Debian: the systemd unit dir comes from systemd's pkg-config file,
	# the same place meson installs the units to.
	unitdir=$(pkg-config --variable=systemdsystemunitdir systemd 2>/dev/null ||
		echo /usr/lib/systemd/system)
	cat >"$work/macros" <<MACROS
%_vpath_builddir redhat-linux-build
%meson meson setup --buildtype=plain --prefix=%{_prefix} --sysconfdir=%{_sysconfdir} --localstatedir=%{_localstatedir} --mandir=%{_mandir} %{_vpath_builddir}
%meson_build ninja -C %{_vpath_builddir}
%meson_install DESTDIR=%{buildroot} meson install -C %{_vpath_builddir} --no-rebuild
%_unitdir $unitdir
%_sysusersdir $(pkg-config --variable=sysusersdir systemd 2>/dev/null || echo /usr/lib/sysusers.d)
%_tmpfilesdir $(pkg-config --variable=tmpfilesdir systemd 2>/dev/null || echo /usr/lib/tmpfiles.d)
%systemd_post() %{nil}
%systemd_preun() %{nil}
%systemd_postun() %{nil}
%systemd_postun_with_restart() %{nil}
MACROS
	args+=(--load "$work/macros" --nodeps)
fi

say "rpmbuild (version $version)"
rpmbuild "${args[@]}" -bb "$SPEC" >"$work/build.log" 2>&1 || {
	tail -n 40 "$work/build.log" >&2
	die "rpmbuild failed (last 40 lines above)"
}
mkdir -p "$OUTDIR"
find "$work/RPMS" -name '*.rpm' -exec cp {} "$OUTDIR"/ \; -printf "$OUTDIR/%f\n"
