#!/usr/bin/env bash
# Copies the project's source tree into DEST (which must exist), without
# version control, build trees, benchmark data, downloads or caches: the
# one definition of "the source" the package builds start from.
#
#   scripts/copy-source.sh DEST [TAR-OPTION...]
#
# Extra arguments go to tar, e.g. --exclude=./packaging/debian.
set -euo pipefail

(($# >= 1)) || { echo "usage: copy-source.sh DEST [TAR-OPTION...]" >&2; exit 2; }
dest=$1
shift
[[ -d $dest ]] || { echo "copy-source: $dest is not a directory" >&2; exit 1; }

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
tar -C "$root" -cf - --exclude=./.git --exclude=./build --exclude=./builddir \
	--exclude=./bench --exclude='*.part' --exclude=__pycache__ \
	--exclude=.cache "$@" . | tar -C "$dest" -xf -
