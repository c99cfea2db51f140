#!/usr/bin/env bash
# Builds the Debian packages porthole-host and porthole-guest from this tree
# and checks them with lintian.
#
#   scripts/build-debs.sh [-o OUTDIR]
#
# dpkg-buildpackage wants debian/ at the source root, so the tree is copied
# to a temp dir with packaging/debian put there. The .debs end up in OUTDIR
# (default build/debs/ in the source tree). Fails if the build fails or
# lintian reports an error; lintian's warnings are listed.
set -euo pipefail

say() { printf 'build-debs: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUTDIR=$ROOT/build/debs

while getopts 'o:h' opt; do
	case $opt in
	o) OUTDIR=$OPTARG ;;
	h) sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) exit 2 ;;
	esac
done
shift $((OPTIND - 1))
(($# == 0)) || die "unexpected argument: $1"

for tool in dpkg-buildpackage dh lintian fakeroot; do
	command -v "$tool" >/dev/null 2>&1 ||
		die "$tool not found; run scripts/install-deps.sh"
done

version=$(dpkg-parsechangelog -l "$ROOT/packaging/debian/changelog" -S Version)
work=$(mktemp -d "${TMPDIR:-/tmp}/porthole-debs.XXXXXX")
trap 'rm -rf "$work"' EXIT
src=$work/porthole-$version
mkdir -p "$src"

# Copy the sources the meson build uses: not version control, build
# output, the benchmarks (not part of the build, and large) or leftovers.
say "copying the tree to $src"
"$ROOT/scripts/copy-source.sh" "$src" --exclude=./packaging/debian
cp -a "$ROOT/packaging/debian" "$src/debian"

say "dpkg-buildpackage (version $version)"
jobs=$(nproc 2>/dev/null || echo 2)
(cd "$src" &&
	DEB_BUILD_OPTIONS="nocheck parallel=$jobs${DEB_BUILD_OPTIONS:+ $DEB_BUILD_OPTIONS}" \
	dpkg-buildpackage -us -uc -b) >"$work/build.log" 2>&1 || {
	tail -n 60 "$work/build.log" >&2
	die "dpkg-buildpackage failed (last 60 lines above)"
}

shopt -s nullglob
debs=("$work"/*.deb)
changes=("$work"/*.changes)
((${#debs[@]} > 0)) || die "dpkg-buildpackage produced no .deb"

say "lintian"
lint=$work/lintian.txt
lint_rc=0
lintian --fail-on error --tag-display-limit 0 "${changes[@]:-${debs[@]}}" \
	>"$lint" 2>&1 || lint_rc=$?
errors=$(grep -c '^E: ' "$lint" || true)
warnings=$(grep -c '^W: ' "$lint" || true)
if ((warnings > 0)); then
	say "lintian warnings:"
	grep '^W: ' "$lint" >&2
fi
if ((lint_rc != 0 || errors > 0)); then
	cat "$lint" >&2
	die "lintian failed ($errors errors)"
fi
say "lintian: $errors errors, $warnings warnings"

mkdir -p "$OUTDIR"
cp "${debs[@]}" "$OUTDIR"/
for d in "${debs[@]}"; do
	printf '%s\n' "$OUTDIR/$(basename "$d")"
done
