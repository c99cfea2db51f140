#!/bin/sh
# Lists C function definitions, static ones too, whose names do not start
# with their file's prefix: the file's base name and "_" (store_fill.c:
# store_fill_), or, in a library directory, the library's prefix before it
# (proto/path.c: ph_path_; cache/pack.c: cache_pack_, or cache__pack_ for
# what only the library itself calls). main() is exempt. Prints
# FILE:LINE:NAME for each and exits 1 if there was any.
#
# Usage: scripts/check-prefixes.sh [DIR|FILE...]
#   (default: hostd proto cache guest-agent repo-tools common vhost)
cd "$(dirname "$0")/.." || exit 2
[ $# -gt 0 ] || set -- hostd proto cache guest-agent repo-tools common vhost
find "$@" -name '*.c' | sort | xargs awk '
FNR == 1 {
	base = FILENAME
	sub(/.*\//, "", base)
	sub(/\.c$/, "", base)
	gsub(/-/, "_", base)
	lib = FILENAME
	sub(/\/.*/, "", lib)
	if (lib == "proto")
		lib = "ph"
	else if (lib != "cache" && lib != "vhost")
		lib = ""
	prev = ""
}
# BSD style: the return type alone on the line before, the name at
# column 0. Each name once per file (a prototype may come first).
/^[A-Za-z_][A-Za-z0-9_]*\(/ && prev ~ /^[A-Za-z_][A-Za-z0-9_ \t*]*$/ {
	name = $0
	sub(/\(.*/, "", name)
	ok = name == "main" || index(name, base "_") == 1
	if (!ok && lib != "")
		ok = index(name, lib "_" base "_") == 1 ||
		    index(name, lib "__" base "_") == 1
	if (!ok && !((FILENAME, name) in seen)) {
		printf "%s:%d:%s\n", FILENAME, FNR, name
		bad = 1
	}
	seen[FILENAME, name] = 1
}
{ prev = $0 }
END { exit bad }
'
