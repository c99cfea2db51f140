#!/usr/bin/env bash
# Porthole benchmark: measures portholed + porthole against the raw limit
# (sendfile + splice), nginx + curl and socat on the same files, over unix
# sockets, in one run. Writes bench/results/latest.{md,png,tsv}.
# See bench/README.md for what each scenario measures.
#
# Environment:
#   BENCH_RUNS=N         timed runs per scenario and peer (default 5; quick: 3)
#   BENCH_QUICK=1        small files, for a smoke run of the whole pipeline
#   BENCH_SCENARIOS=".." only these scenario ids (default: all)
#   BENCH_PEERS=".."     only these peers: porthole raw nginx socat (default: all)
#   BENCH_BUILD=DIR      where to build (default bench/build)
#   BENCH_MESON_DIR=DIR  use this configured build of Porthole instead of
#                        building one (for example a release build with -g)
#   BENCH_WORK=DIR       big input and output files (default bench/work); must
#                        be on a real disk, not tmpfs
#   BENCH_KEEP=1         keep the generated files in BENCH_WORK afterwards
#   BENCH_CACHE=0        skip the cache library's own benchmark (cache_bench)
#   BENCH_NESTING=0      skip the relay chain (nesting) measurements
#   BENCH_NEST_SIZE=N    bytes of the file pulled through the relays (default:
#                        the big files' size)
#   BENCH_RESULTS=DIR    write the results here (default bench/results)
#   BENCH_VHOST=0        skip the VM measurement (vhost-user against in-VM
#                        vsock loopback; scenario id vhost-user)
#   BENCH_VM_MB=N        MiB the guest pulls there (default 256; quick: 64)
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SRC_ROOT=$(cd "$BENCH_DIR/.." && pwd)
RESULTS=${BENCH_RESULTS:-$BENCH_DIR/results}
BUILD=${BENCH_BUILD:-$BENCH_DIR/build}
WORK=${BENCH_WORK:-$BENCH_DIR/work}
QUICK=${BENCH_QUICK:-0}

MiB=$((1024 * 1024))
if [ "$QUICK" = 1 ]; then
	RUNS=${BENCH_RUNS:-3}
	BIG=$((64 * MiB))		# the "1 GiB" files
	BATCH_FILES=1000
	CONC_CLIENTS=16
	CONC_SIZE=$((8 * MiB))
else
	RUNS=${BENCH_RUNS:-5}
	BIG=$((1024 * MiB))
	BATCH_FILES=10000
	CONC_CLIENTS=64
	CONC_SIZE=$((64 * MiB))
fi
BATCH_SIZE=4096
SOCAT_BUF=131072	# socat's default 8 KiB buffer would make it 5x slower
ALL_PEERS="porthole raw nginx socat"
PEERS=${BENCH_PEERS:-$ALL_PEERS}

# An awk function for the reports: med(" a b c") is the median of the
# numbers in a space-separated list (0 for none).
AWK_MEDIAN='
function med(s,    a, n, i, j, t) {
	n = split(s, a, " ")
	for (i = 2; i <= n; i++) {
		t = a[i]
		for (j = i - 1; j >= 1 && a[j] + 0 > t + 0; j--)
			a[j + 1] = a[j]
		a[j + 1] = t
	}
	return n == 0 ? 0 : (n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2)
}
'

log() { printf 'bench: %s\n' "$*" >&2; }
die() { printf 'bench: error: %s\n' "$*" >&2; exit 1; }

case "$RUNS" in
''|*[!0-9]*|0) die "BENCH_RUNS must be a positive integer, not '$RUNS'" ;;
esac
for p in $PEERS; do
	case " $ALL_PEERS " in *" $p "*) ;; *) die "unknown peer '$p' in BENCH_PEERS" ;; esac
done

# --- Packages ---------------------------------------------------------------

SUDO=
if [ "$(id -u)" -ne 0 ]; then
	command -v sudo >/dev/null || die "not root and no sudo: cannot install packages"
	SUDO=sudo
fi

pkg_installed() {
	dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}

# Installs the tools the peers and the chart need, once; a second run is a no-op.
ensure_packages() {
	local want=() p
	if ! pkg_installed nginx-light && ! pkg_installed nginx && \
	    ! pkg_installed nginx-core && ! command -v nginx >/dev/null &&
	    ! [ -x /usr/sbin/nginx ]; then
		want+=(nginx-light)
	fi
	for p in curl socat coreutils zstd openssl; do
		pkg_installed "$p" || want+=("$p")
	done
	if ! pkg_installed gnuplot-nox && ! pkg_installed gnuplot-qt &&
	    ! pkg_installed gnuplot-x11 && ! command -v gnuplot >/dev/null; then
		want+=(gnuplot-nox)
	fi
	for p in meson ninja-build gcc pkg-config; do
		pkg_installed "$p" || want+=("$p")
	done
	[ ${#want[@]} -eq 0 ] && return 0
	log "installing: ${want[*]}"
	$SUDO apt-get update -qq
	$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	    --no-install-recommends "${want[@]}" >/dev/null
}

# --- Build ------------------------------------------------------------------

TOOLS=$BUILD/tools
NGINX_BIN=
PHD=
PH=
PHCTL=

build_tools() {
	local t
	mkdir -p "$TOOLS"
	for t in raw_send raw_recv timeit gentext; do
		if [ ! -x "$TOOLS/$t" ] || [ "$BENCH_DIR/$t.c" -nt "$TOOLS/$t" ]; then
			cc -O2 -Wall -Wextra -std=c11 -D_GNU_SOURCE \
			    -o "$TOOLS/$t" "$BENCH_DIR/$t.c" ||
			    die "cannot compile bench/$t.c"
		fi
	done
	# ttfb speaks the protocol, so it is built with the proto library.
	if [ ! -x "$TOOLS/ttfb" ] || [ "$BENCH_DIR/ttfb.c" -nt "$TOOLS/ttfb" ]; then
		cc -O2 -Wall -Wextra -std=c11 -D_GNU_SOURCE -I "$SRC_ROOT/proto" \
		    -o "$TOOLS/ttfb" "$BENCH_DIR/ttfb.c" "$SRC_ROOT"/proto/*.c ||
		    die "cannot compile bench/ttfb.c"
	fi
}

# Builds an optimised Porthole without sanitizers or tests.
build_porthole() {
	local dir
	if [ -n "${BENCH_MESON_DIR:-}" ]; then
		dir=$BENCH_MESON_DIR
	else
		dir=$BUILD/meson
		if [ ! -f "$dir/build.ninja" ]; then
			meson setup "$dir" "$SRC_ROOT" --buildtype=release \
			    -Db_sanitize=none -Dtests=false >"$BUILD/meson-setup.log" 2>&1 ||
			    { tail -20 "$BUILD/meson-setup.log" >&2; die "meson setup failed"; }
		else
			meson configure "$dir" --buildtype=release -Db_sanitize=none \
			    -Dtests=false >/dev/null
		fi
	fi
	ninja -C "$dir" >"$BUILD/ninja.log" 2>&1 ||
	    { tail -30 "$BUILD/ninja.log" >&2; die "building Porthole failed"; }
	PHD=$dir/hostd/portholed
	PH=$dir/guest-agent/porthole
	PHCTL=$dir/repo-tools/portholectl
	[ -x "$PHD" ] || die "no $PHD after the build"
	[ -x "$PH" ] || die "no $PH after the build"
}

# --- Scenarios --------------------------------------------------------------
#
# A scenario is one row of the table. Fields:
#   kind    single (one file), batch (many files, one client process),
#           conc (CLIENTS copies of a single transfer at once)
#   src     path in the repository (a directory for batch)
#   dest    file (a file on the work disk, made durable) or null (/dev/null)
#   phopts  extra options for `porthole get`
#   peers   which peers run it (raw and socat cannot do a batch)
#   base    another scenario whose peer numbers this row reuses for the
#           peers it does not run itself (same files, same destination)
#   label   for the table; chart: short label for the PNG
# Adding a scenario is one `scenario` line (plus input generation if it
# needs a new file).

SCEN_IDS=()
declare -A S_KIND S_SRC S_DEST S_PHOPTS S_PEERS S_BASE S_LABEL S_CHART S_CLIENTS
# Extra portholed options for a scenario (by id), when it needs some.
declare -A S_PHDOPTS

scenario() {
	local id=$1
	SCEN_IDS+=("$id")
	S_KIND[$id]=$2 S_SRC[$id]=$3 S_DEST[$id]=$4 S_PHOPTS[$id]=$5
	S_PEERS[$id]=$6 S_BASE[$id]=$7 S_LABEL[$id]=$8 S_CHART[$id]=$9
	S_CLIENTS[$id]=1
	[ "$2" = conc ] && S_CLIENTS[$id]=$CONC_CLIENTS
	return 0
}

human() {
	local b=$1
	if [ $((b % (1024 * MiB))) -eq 0 ]; then echo "$((b / 1024 / MiB)) GiB"
	elif [ $((b % MiB)) -eq 0 ]; then echo "$((b / MiB)) MiB"
	else echo "$((b / 1024)) KiB"; fi
}

define_scenarios() {
	local big conc
	big=$(human "$BIG")
	conc=$(human "$CONC_SIZE")
	#        id              kind   src         dest phopts      peers                   base
	scenario random-file     single random.bin  file ""          "$ALL_PEERS"            "" \
	    "$big random, hot cache -> file" "random->file"
	scenario random-null     single random.bin  null ""          "$ALL_PEERS"            "" \
	    "$big random, hot cache -> /dev/null" "random->null"
	# The same pull with the content cache off: every GET reads the
	# repository file (the hit path above against the direct path).
	scenario random-null-direct single random.bin null ""        "porthole"              random-null \
	    "$big random -> /dev/null, --cache-size 0 (no cache)" "random->null nocache"
	S_PHDOPTS[random-null-direct]="--cache-size 0"
	scenario text-file-zstd  single text.txt    file ""          "$ALL_PEERS"            "" \
	    "$big text -> file, zstd" "text->file zstd"
	scenario text-file-plain single text.txt    file --no-zstd   "porthole"              text-file-zstd \
	    "$big text -> file, --no-zstd" "text->file plain"
	scenario text-null-zstd  single text.txt    null ""          "$ALL_PEERS"            "" \
	    "$big text -> /dev/null, zstd" "text->null zstd"
	scenario text-null-plain single text.txt    null --no-zstd   "porthole"              text-null-zstd \
	    "$big text -> /dev/null, --no-zstd" "text->null plain"
	scenario batch           batch  batch       file ""          "porthole nginx"        "" \
	    "$BATCH_FILES x $(human $BATCH_SIZE) files, one client -> dir" "batch (MB/s)"
	scenario concurrent      conc   conc.bin    null ""          "$ALL_PEERS"            "" \
	    "$CONC_CLIENTS clients x $conc (same file) -> /dev/null" "${CONC_CLIENTS} clients"
}

# --- Inputs -----------------------------------------------------------------

REPO=$WORK/repo
DEST=$WORK/dest

need_space() {
	local need avail
	need=$(( (2 * BIG + CONC_SIZE + 2 * BATCH_FILES * BATCH_SIZE + BIG) / MiB + 256 ))
	avail=$(df -Pm "$WORK" | awk 'NR == 2 { print $4 }')
	log "disk: need about ${need} MiB in $WORK, ${avail} MiB free"
	[ "$avail" -ge "$need" ] || die "not enough space in $WORK"
}

file_size() { stat -c %s "$1"; }

# Generates each input unless a file of the right size is already there.
make_inputs() {
	mkdir -p "$REPO" "$DEST"
	if [ ! -f "$REPO/random.bin" ] || [ "$(file_size "$REPO/random.bin")" -ne "$BIG" ]; then
		log "generating random.bin ($(human "$BIG"))"
		head -c "$BIG" /dev/urandom >"$REPO/random.bin.tmp"
		mv "$REPO/random.bin.tmp" "$REPO/random.bin"
	fi
	if [ ! -f "$REPO/text.txt" ] || [ "$(file_size "$REPO/text.txt")" -ne "$BIG" ]; then
		log "generating text.txt ($(human "$BIG"))"
		"$TOOLS/gentext" "$BIG" >"$REPO/text.txt.tmp"
		mv "$REPO/text.txt.tmp" "$REPO/text.txt"
	fi
	if [ ! -f "$REPO/conc.bin" ] || [ "$(file_size "$REPO/conc.bin")" -ne "$CONC_SIZE" ]; then
		log "generating conc.bin ($(human "$CONC_SIZE"))"
		head -c "$CONC_SIZE" /dev/urandom >"$REPO/conc.bin.tmp"
		mv "$REPO/conc.bin.tmp" "$REPO/conc.bin"
	fi
	if [ "$(find "$REPO/batch" -type f 2>/dev/null | wc -l)" -ne "$BATCH_FILES" ]; then
		log "generating batch/ ($BATCH_FILES files of $BATCH_SIZE bytes)"
		rm -rf "$REPO/batch"
		mkdir -p "$REPO/batch"
		head -c $((BATCH_FILES * BATCH_SIZE)) /dev/urandom |
		    (cd "$REPO/batch" && split -b "$BATCH_SIZE" -a 5 -d - f)
	fi
	chmod -R a+rX "$REPO"
	# Hot page cache: every source is read once before anything is timed.
	cat "$REPO/random.bin" "$REPO/text.txt" "$REPO/conc.bin" "$REPO"/batch/* >/dev/null
	find "$REPO/batch" -type f -printf 'batch/%f\n' | sort >"$TMP/batch.list"
	mapfile -t BATCH_ARGS <"$TMP/batch.list"
	awk -v d="$DEST/batch" '{ n = $0; sub(/.*\//, "", n);
	    printf "url = \"http://localhost/%s\"\noutput = \"%s/%s\"\n", $0, d, n }' \
	    "$TMP/batch.list" >"$TMP/batch.curl"
}

# --- Servers ----------------------------------------------------------------

TMP=
PIDS=()
PHD_PID=
PHD_HWM=0
PHD_RC=0
SOCAT_CUR=
SOCAT_N=0
declare -A SOCAT_SOCK

cleanup() {
	local pid
	for pid in "${PIDS[@]}" $PHD_PID; do
		kill "$pid" 2>/dev/null || true
	done
	for pid in "${PIDS[@]}" $PHD_PID; do
		wait "$pid" 2>/dev/null || true
	done
	[ -n "$TMP" ] && rm -rf "$TMP"
	if [ "${BENCH_KEEP:-0}" != 1 ] && [ -d "$WORK" ]; then
		rm -rf "$WORK/repo" "$WORK/dest" "$WORK/cache" "$WORK/nest-cache"
		rmdir "$WORK" 2>/dev/null || true
	fi
}

# Waits up to 10 s for "$@" to succeed (a server answering on its socket).
wait_ready() {
	local what=$1 tries=100
	shift
	while [ "$tries" -gt 0 ]; do
		tries=$((tries - 1))
		"$@" >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	die "$what did not come up"
}

start_raw() {
	"$TOOLS/raw_send" "$REPO" "$TMP/raw.sock" 2>>"$TMP/log/raw_send.log" &
	PIDS+=($!)
	wait_ready raw_send test -S "$TMP/raw.sock"
	sleep 0.1	# bind() made the socket; let listen() follow
}

start_nginx() {
	local d=$TMP/nginx user=
	mkdir -p "$d"
	[ "$(id -u)" -eq 0 ] && user="user root root;"
	cat >"$d/nginx.conf" <<-EOF
	# Generated by bench/run.sh: a private nginx on a unix socket.
	worker_processes auto;
	daemon off;
	$user
	pid $d/nginx.pid;
	error_log $d/error.log warn;
	events { worker_connections 1024; }
	http {
		access_log off;
		client_body_temp_path $d/body;
		proxy_temp_path $d/proxy;
		fastcgi_temp_path $d/fastcgi;
		uwsgi_temp_path $d/uwsgi;
		scgi_temp_path $d/scgi;
		sendfile on;
		tcp_nopush on;
		keepalive_requests 1000000;
		keepalive_timeout 120s;
		default_type application/octet-stream;
		server {
			listen unix:$d/nginx.sock;
			root $REPO;
			location / { }
		}
	}
	EOF
	"$NGINX_BIN" -p "$d" -c "$d/nginx.conf" -e "$d/error.log" 2>>"$TMP/log/nginx.log" &
	PIDS+=($!)
	wait_ready nginx curl -sf --unix-socket "$d/nginx.sock" -o /dev/null \
	    "http://localhost/${BATCH_ARGS[0]}"
}

# socat serves one file per listener: sets SOCAT_CUR to the listener for
# source file $1, starting it the first time.
socat_sock() {
	local src=$1 s
	if [ -z "${SOCAT_SOCK[$src]:-}" ]; then
		SOCAT_N=$((SOCAT_N + 1))
		s=$TMP/socat-$SOCAT_N.sock
		socat -b "$SOCAT_BUF" -U "UNIX-LISTEN:$s,fork,unlink-early,backlog=256" \
		    "OPEN:$REPO/$src,rdonly" 2>>"$TMP/log/socat.log" &
		PIDS+=($!)
		wait_ready socat test -S "$s"
		sleep 0.1
		SOCAT_SOCK[$src]=$s
	fi
	SOCAT_CUR=${SOCAT_SOCK[$src]}
}

start_portholed() {
	rm -f "$TMP/ph.sock"
	"$PHD" -l "unix:$TMP/ph.sock" -r "$REPO" -c "$TMP/ph.ctl" \
	    --state-dir "$TMP/state" --cache-dir "$TMP/cache" \
	    ${S_PHDOPTS[${id:-}]:-} 2>>"$TMP/log/portholed.log" &
	PHD_PID=$!
	wait_ready portholed "$PH" -e "unix:$TMP/ph.sock" ping
}

# Reads portholed's peak RSS (KiB) into PHD_HWM, then stops it with SIGTERM
# and puts its exit status in PHD_RC.
stop_portholed() {
	PHD_HWM=$(awk '/^VmHWM:/ { print $2 }' "/proc/$PHD_PID/status" 2>/dev/null || true)
	PHD_HWM=${PHD_HWM:-0}
	PHD_RC=0
	kill -TERM "$PHD_PID"
	wait "$PHD_PID" || PHD_RC=$?
	PHD_PID=
}

# --- Measuring --------------------------------------------------------------

CMD=()

# Sets CMD to the client command of one peer for one scenario; $1 peer,
# $2 scenario, $3 output (a path, or "-" for standard output).
client_cmd() {
	local peer=$1 id=$2 out=$3 src url
	src=${S_SRC[$id]}
	url=http://localhost/$src
	case "${S_KIND[$id]}:$peer" in
	batch:porthole)
		# shellcheck disable=SC2206
		CMD=("$PH" -e "unix:$TMP/ph.sock" get -q ${S_PHOPTS[$id]} \
		    "${BATCH_ARGS[@]}" "$out/") ;;
	batch:nginx)
		CMD=(sh -c 'curl -sS -f --unix-socket "$1" -K "$2" && sync -f "$3"' \
		    sh "$TMP/nginx/nginx.sock" "$TMP/batch.curl" "$out") ;;
	*:porthole)
		# shellcheck disable=SC2206
		CMD=("$PH" -e "unix:$TMP/ph.sock" get -q ${S_PHOPTS[$id]} "$src" "$out") ;;
	*:raw)
		if [ "$out" = - ]; then
			CMD=("$TOOLS/raw_recv" -e "$(file_size "$REPO/$src")" \
			    "$TMP/raw.sock" "$src" -)
		else
			CMD=("$TOOLS/raw_recv" -f -e "$(file_size "$REPO/$src")" \
			    "$TMP/raw.sock" "$src" "$out")
		fi ;;
	*:nginx)
		if [ "$out" = - ]; then
			CMD=(curl -sS -f --unix-socket "$TMP/nginx/nginx.sock" "$url")
		else
			CMD=(sh -c 'curl -sS -f --unix-socket "$1" -o "$2" "$3" && sync "$2"' \
			    sh "$TMP/nginx/nginx.sock" "$out" "$url")
		fi ;;
	*:socat)
		if [ "$out" = - ]; then
			CMD=(socat -b "$SOCAT_BUF" -u "UNIX-CONNECT:$SOCAT_CUR" STDOUT)
		else
			CMD=(sh -c 'socat -b "$1" -u "UNIX-CONNECT:$2" "CREATE:$3" && sync "$3"' \
			    sh "$SOCAT_BUF" "$SOCAT_CUR" "$out")
		fi ;;
	*)
		die "no client command for $peer in ${S_KIND[$id]}" ;;
	esac
}

# Checks what a run delivered; $4 = 1 for the warm-up, which also compares
# contents. Prints nothing and returns 0 when the output is right.
check_output() {
	local id=$1 out=$2 bytes=$3 warm=$4 got n
	case "${S_KIND[$id]}" in
	batch)
		n=$(find "$out" -maxdepth 1 -type f ! -name '*.part' | wc -l)
		[ "$n" -eq "$BATCH_FILES" ] || { echo "$n of $BATCH_FILES files"; return 1; }
		if [ "$warm" = 1 ]; then
			diff -r -q "$REPO/batch" "$out" >/dev/null ||
			    { echo "batch contents differ"; return 1; }
		fi ;;
	*)
		got=$(file_size "$out")
		[ "$got" -eq "$bytes" ] || { echo "got $got bytes, expected $bytes"; return 1; }
		if [ "$warm" = 1 ] && [ "${S_CLIENTS[$id]}" -eq 1 ]; then
			cmp -s "$REPO/${S_SRC[$id]}" "$out" ||
			    { echo "contents differ from the source"; return 1; }
		fi ;;
	esac
	return 0
}

# One measurement: scenario $1, peer $2, run $3 (0 = warm-up, not counted).
measure() {
	local id=$1 peer=$2 run=$3 kind clients
	local out stdout=/dev/null bytes files rc=0 secs rss load why=""
	kind=${S_KIND[$id]}
	clients=${S_CLIENTS[$id]}
	if [ "$kind" = batch ]; then
		files=$BATCH_FILES
		bytes=$((BATCH_FILES * BATCH_SIZE))
	else
		files=$clients
		bytes=$(( $(file_size "$REPO/${S_SRC[$id]}") * clients ))
	fi
	[ "$peer" = socat ] && socat_sock "${S_SRC[$id]}"

	rm -rf "${DEST:?}"/*
	if [ "${S_DEST[$id]}" = null ]; then
		out=-
		# The warm-up keeps what one client receives, to check it. (Many
		# clients cannot share one capture file: splice() into a shared
		# file description races on its offset and refuses O_APPEND. Each
		# of them checks what it got: raw_recv -e, curl against
		# Content-Length, porthole against the SHA-256.)
		[ "$run" -eq 0 ] && [ "$clients" -eq 1 ] && stdout=$DEST/stdout
	elif [ "$kind" = batch ]; then
		out=$DEST/batch
		mkdir -p "$out"
	else
		out=$DEST/${S_SRC[$id]##*/}
	fi
	# Earlier runs' dirty pages must not be written back on this run's time.
	sync
	client_cmd "$peer" "$id" "$out"
	# Other work on the machine skews the figures; the report shows it.
	read -r load _ </proc/loadavg
	# A hung client must not hang the benchmark: allow 60 s + 20 MB/s +
	# 20 ms per file.
	"$TOOLS/timeit" -n "$clients" -r "$TMP/res" -- \
	    timeout -k 5 $((60 + bytes / 20000000 + files / 50)) "${CMD[@]}" \
	    >"$stdout" 2>"$TMP/stderr" </dev/null || rc=$?
	read -r secs rss _ <"$TMP/res"
	if [ "$rc" -ne 0 ]; then
		why="exit $rc: $(tail -c 300 "$TMP/stderr" | tr '\n' ' ')"
	elif [ "$stdout" != /dev/null ]; then
		why=$(check_output "$id" "$stdout" "$bytes" 1) || true
	elif [ "$out" != - ]; then
		why=$(check_output "$id" "$out" "$bytes" $((run == 0))) || true
	fi
	[ -n "$why" ] && [ "$rc" -eq 0 ] && rc=99
	[ -n "$why" ] && log "  FAILED $id/$peer run $run: $why"
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$id" "$peer" "$run" \
	    "$secs" "$bytes" "$files" "$rss" "$rc" "$load" >>"$TSV"
	if [ "$run" -gt 0 ] && [ "$rc" -eq 0 ]; then
		log "  $(printf '%-16s %-8s run %d: %7.3f s %9.1f MB/s  rss %6d KiB' \
		    "$id" "$peer" "$run" "$secs" "$(awk -v b="$bytes" -v s="$secs" \
		    'BEGIN { print b / 1e6 / s }')" "$rss")"
	fi
	rm -rf "${DEST:?}"/*
}

# Runs one scenario: a warm-up and RUNS timed runs per peer, peers interleaved.
run_scenario() {
	local id=$1 peers=() p run
	for p in ${S_PEERS[$id]}; do
		case " $PEERS " in *" $p "*) peers+=("$p") ;; esac
	done
	[ ${#peers[@]} -eq 0 ] && return 0
	log "scenario $id: ${S_LABEL[$id]} (peers: ${peers[*]})"
	case " ${peers[*]} " in *" porthole "*) start_portholed ;; esac
	for run in $(seq 0 "$RUNS"); do
		for p in "${peers[@]}"; do
			measure "$id" "$p" "$run"
		done
	done
	if [ -n "$PHD_PID" ]; then
		stop_portholed
		if [ "$PHD_RC" -ne 0 ]; then
			log "  portholed exited $PHD_RC on SIGTERM; its last lines:"
			tail -5 "$TMP/log/portholed.log" >&2
		fi
		printf '%s\t%s\t%s\n' "$id" "$PHD_HWM" "$PHD_RC" >>"$RSS_TSV"
	fi
}

write_meta() {
	local rev
	rev=$(git -C "$SRC_ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
	{
		printf 'key\tvalue\n'
		printf 'date\t%s\n' "$(date -u '+%Y-%m-%d %H:%M UTC')"
		printf 'commit\t%s\n' "$rev"
		printf 'runs\t%s\n' "$RUNS"
		printf 'quick\t%s\n' "$QUICK"
		printf 'cpu\t%s\n' "$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)"
		printf 'cores\t%s\n' "$(nproc)"
		printf 'memory\t%s\n' "$(free -g | awk '/^Mem:/ { print $2 " GiB" }')"
		printf 'kernel\t%s\n' "$(uname -r)"
		printf 'workfs\t%s\n' "$(df -PT "$WORK" | awk 'NR == 2 { print $2 }')"
		printf 'nginx\t%s\n' "$("$NGINX_BIN" -v 2>&1 | sed 's/.*nginx\///')"
		printf 'curl\t%s\n' "$(curl --version | awk 'NR == 1 { print $2 }')"
		printf 'socat\t%s\n' "$(socat -V | awk '/socat version/ { print $3 }')"
		if [ -n "$PH" ]; then
			printf 'porthole\t%s\n' "$("$PH" --version 2>&1 | head -1)"
		fi
		printf 'load_start\t%s\n' "$(cut -d' ' -f1-3 /proc/loadavg)"
		measure_ceilings
	} >"$META_TSV"
}

# What one core of this machine can do at best for the two costs Porthole
# adds to a transfer: SHA-256 (openssl) and zstd level 1 on 1 MiB blocks of
# the text file (zstd's own benchmark). Context for reading the table.
measure_ceilings() {
	local sha z zr zc zd
	sha=$(openssl speed -evp sha256 -bytes 1048576 -seconds 1 2>/dev/null |
	    awk '/^sha256/ { sub(/k$/, "", $2); printf "%.0f", $2 * 1000 / 1e6 }')
	printf 'sha256_mbs\t%s\n' "${sha:-?}"
	head -c $((64 * MiB)) "$REPO/text.txt" >"$TMP/text64"
	z=$(zstd -q -b1 -i1 -B1048576 "$TMP/text64" 2>&1 | tr '\r' '\n' |
	    awk 'NF >= 6 { r = $3; gsub(/[()]/, "", r); c = $4; d = $6 }
	    END { print r, c, d }')
	rm -f "$TMP/text64"
	read -r zr zc zd <<<"$z"
	printf 'zstd1_ratio\t%s\nzstd1_comp_mbs\t%s\nzstd1_decomp_mbs\t%s\n' \
	    "${zr:-?}" "${zc:-?}" "${zd:-?}"
}

# --- Cache library ----------------------------------------------------------

# The content cache on its own (bench/cache_bench.c): cache_open time and
# memory with 100k entries, and eviction churn with a budget of 10% of the
# working set. The entries are stored once (about 1 ms each, every fill is
# fsynced) and reused with BENCH_KEEP=1. Writes results/latest-cache.txt.
run_cache_bench() {
	local dir n=100000 ops=20000 avail
	if [ "$QUICK" = 1 ]; then
		n=10000 ops=3000
	fi
	[ -n "$PHD" ] || build_porthole
	dir=${BENCH_MESON_DIR:-$BUILD/meson}
	ninja -C "$dir" cache/cache_bench >>"$BUILD/ninja.log" 2>&1 ||
	    { tail -30 "$BUILD/ninja.log" >&2; die "building cache_bench failed"; }
	avail=$(df -Pm "$WORK" | awk 'NR == 2 { print $4 }')
	[ "$avail" -ge $((n / 100 + 256)) ] ||
	    die "not enough space in $WORK for cache_bench"
	log "cache library: $n entries, $ops churn requests"
	mkdir -p "$WORK/cache"
	"$dir/cache/cache_bench" -n "$n" -o "$ops" "$WORK/cache" \
	    >"$RESULTS/latest-cache.txt" || die "cache_bench failed"
	sed 's/^/bench:   /' "$RESULTS/latest-cache.txt" >&2
}

# --- Nesting ----------------------------------------------------------------
#
# Relay mode: L0 serves the repository, L1, L2 and L3 each run
# `portholed --upstream` on the level before (unix sockets, caches on the
# work disk). porthole pulls random.bin to /dev/null (verifying its
# SHA-256) directly from L0, through one relay (at L1) and through three
# (at L3), with the relays' caches cleared before the pull (cold) and kept
# (warm). bench/ttfb.c times the first DATA frame of a GET the same way.
# Writes results/latest-nesting.tsv and results/latest-nesting.txt.

NEST_SRC=random.bin
NEST_PIDS=()

# nest_start N: starts level N and waits until it answers.
nest_start() {
	local n=$1 d=$TMP/nest/L$1 args
	mkdir -p "$d/state" "$WORK/nest-cache/L$n"
	args=(-l "unix:$d/sock" -c "$d/ctl" --state-dir "$d/state"
	    --cache-dir "$WORK/nest-cache/L$n"
	    --cache-size $((2 * NEST_SIZE / MiB + 64))M)
	if [ "$n" -eq 0 ]; then
		args+=(-r "$REPO")
	else
		args+=(--upstream "unix:$TMP/nest/L$((n - 1))/sock")
	fi
	"$PHD" "${args[@]}" 2>>"$TMP/log/nest-L$n.log" &
	PIDS+=($!)
	NEST_PIDS+=($!)
	wait_ready "nesting L$n" "$PH" -e "unix:$d/sock" ping
}

# nest_clear N...: empties those levels' caches (the next pull is cold).
nest_clear() {
	local n
	for n in "$@"; do
		"$PHCTL" -s "$TMP/nest/L$n/ctl" cache clear >/dev/null ||
		    die "cannot clear the cache of nesting L$n"
	done
}

# nest_run MODE LEVEL RUN [CLEAR...]: one TTFB probe and one timed pull at
# LEVEL, each after clearing the caches of the CLEAR levels; a TSV line.
nest_run() {
	local mode=$1 lvl=$2 run=$3 ep secs=0 ttfb=0 rc=0 line
	shift 3
	ep=unix:$TMP/nest/L$lvl/sock
	[ $# -gt 0 ] && nest_clear "$@"
	line=$("$TOOLS/ttfb" "$ep" "$NEST_SRC" 2>>"$TMP/stderr") || rc=$?
	[ "$rc" -eq 0 ] && ttfb=${line%% *}
	[ $# -gt 0 ] && nest_clear "$@"
	sync
	if [ "$rc" -eq 0 ]; then
		"$TOOLS/timeit" -r "$TMP/res" -- timeout -k 5 \
		    $((60 + NEST_SIZE / 20000000)) "$PH" -e "$ep" get -q \
		    "$NEST_SRC" - >/dev/null 2>"$TMP/stderr" </dev/null || rc=$?
		read -r secs _ <"$TMP/res"
	fi
	if [ "$rc" -ne 0 ]; then
		log "  FAILED nesting $mode run $run: exit $rc: $(tail -c 300 "$TMP/stderr" | tr '\n' ' ')"
	elif [ "$run" -gt 0 ]; then
		log "  $(printf '%-14s run %d: %7.3f s %9.1f MB/s  ttfb %8.3f ms' \
		    "$mode" "$run" "$secs" "$(awk -v b="$NEST_SIZE" -v s="$secs" \
		    'BEGIN { print b / 1e6 / s }')" "$ttfb")"
	fi
	printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$mode" "$run" "$secs" "$NEST_SIZE" \
	    "$ttfb" "$rc" >>"$NEST_TSV"
}

run_nesting() {
	local run n avail
	[ -n "$PHD" ] || build_porthole
	NEST_SIZE=$(file_size "$REPO/$NEST_SRC")
	avail=$(df -Pm "$WORK" | awk 'NR == 2 { print $4 }')
	[ "$avail" -ge $((4 * NEST_SIZE / MiB + 256)) ] ||
	    die "not enough space in $WORK for the nesting caches"
	log "nesting: $(human "$NEST_SIZE") through 0, 1 and 3 relays"
	NEST_TSV=$RESULTS/latest-nesting.tsv
	printf 'mode\trun\tseconds\tbytes\tttfb_ms\tstatus\n' >"$NEST_TSV"
	for n in 0 1 2 3; do
		nest_start "$n"
	done
	for run in $(seq 0 "$RUNS"); do
		nest_run direct 0 "$run"
		nest_run relay1-cold 1 "$run" 1
		nest_run relay1-warm 1 "$run"
		nest_run relay3-cold 3 "$run" 1 2 3
		nest_run relay3-warm 3 "$run"
	done
	# Medians of the timed runs against the direct pull; the targets are
	# warm >= 90% and cold >= 80% of its throughput, cold TTFB <= 2x.
	awk -F'\t' "$AWK_MEDIAN"'
	NR > 1 && $2 > 0 && $6 == 0 {
		if (!($1 in secs)) order[++n] = $1
		secs[$1] = secs[$1] " " $3; ttfb[$1] = ttfb[$1] " " $5; bytes = $4
	}
	END {
		printf "%-12s %10s %8s %10s %8s\n", "mode", "MB/s", "% direct", "TTFB ms", "x direct"
		ds = med(secs["direct"]); dt = med(ttfb["direct"])
		for (i = 1; i <= n; i++) {
			m = order[i]; s = med(secs[m]); t = med(ttfb[m])
			printf "%-12s %10.1f %7.0f%% %10.3f %8.1f\n", m, bytes / 1e6 / s,
			    100 * ds / s, t, (dt > 0 ? t / dt : 0)
		}
	}' "$NEST_TSV" >"$RESULTS/latest-nesting.txt"
	sed 's/^/bench:   /' "$RESULTS/latest-nesting.txt" >&2
	kill -TERM "${NEST_PIDS[@]}"
	wait "${NEST_PIDS[@]}" || log "  a nesting daemon exited non-zero on SIGTERM"
	rm -rf "$WORK/nest-cache"
}

# --- VM: vhost-user against in-VM vsock loopback -----------------------------
#
# A QEMU TCG guest (tests/vm) pulls BENCH_VM_MB MiB BENCH_RUNS times to a
# file on its tmpfs and to /dev/null, with the same client, over each
# transport: portholed on this host as the guest's vsock device over
# vhost-user (the release build above), and portholed inside the guest on
# the vsock loopback transport (the static build, made here). The guest's
# CPU, not the daemon, is what limits both. Writes results/latest-vhost.tsv
# and results/latest-vhost.txt.
run_vhost_bench() {
	local static=$BUILD/static vmwork=$TMP/vm mb mode tsv=$RESULTS/latest-vhost.tsv
	local args
	mb=${BENCH_VM_MB:-256}
	[ "$QUICK" = 1 ] && mb=${BENCH_VM_MB:-64}
	[ -n "$PHD" ] || build_porthole
	if [ ! -f "$static/build.ninja" ]; then
		meson setup "$static" "$SRC_ROOT" --buildtype=release \
		    -Dstatic_guest=true -Dstatic_daemon=true -Dtests=false \
		    >"$BUILD/static-setup.log" 2>&1 ||
		    { tail -20 "$BUILD/static-setup.log" >&2; die "static meson setup failed"; }
	fi
	ninja -C "$static" >"$BUILD/static-ninja.log" 2>&1 ||
	    { tail -30 "$BUILD/static-ninja.log" >&2; die "static build failed"; }
	log "vhost-user: a TCG guest pulls $mb MiB $RUNS times per destination, over vhost-user and over in-VM vsock loopback"
	for mode in vhost-user loopback; do
		args=(run "bench-$mode" --workdir "$vmwork/$mode" --script vsock-bench
		    --porthole --static-dir "$static" --set "RUNS=$RUNS"
		    --set "BIG_MB=$mb" --timeout 900)
		[ "$mode" = vhost-user ] && args+=(--vhost-user --host-daemon "$PHD")
		python3 "$SRC_ROOT/tests/vm/vmtest.py" "${args[@]}" \
		    >"$TMP/log/vm-$mode.tap" 2>>"$TMP/log/vm.log" ||
		    { grep -v '^ok' "$TMP/log/vm-$mode.tap" | tail -30 >&2; die "the $mode guest failed"; }
	done
	# Every metric of both guests: mode, destination, run, MB/s.
	python3 - "$vmwork" >"$tsv" <<'PY'
import json, sys
from pathlib import Path
print("mode\tdest\trun\tmb_s")
for mode in ("vhost-user", "loopback"):
    s = json.loads((Path(sys.argv[1]) / mode / "summary.json").read_text())
    metrics = s.get("metrics") or [m for v in s.get("vms", [])
                                    for m in v["metrics"]]
    for m in metrics:
        # name: vsock-bench.MODE-DEST-RUN
        name = m["name"].split(".", 1)[1]
        dest, run = name.rsplit("-", 2)[1:]
        print(f"{mode}\t{dest}\t{run}\t{m['mb_s']}")
PY
	# What the host daemon spent on everything the vhost-user guest pulled
	# (2 destinations x RUNS pulls of mb MiB), which the guest-bound
	# throughput above cannot show: CPU, read/write system calls, and the
	# bytes those calls moved per byte delivered (1.0: each byte is copied
	# once, from the page cache into the guest).
	HOST_USE=$(python3 - "$vmwork/vhost-user/summary.json" "$mb" "$RUNS" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
mib = int(sys.argv[2]) * int(sys.argv[3]) * 2
u = s.get("daemon_usage")
if u is None:
    print("host portholed: usage unknown")
else:
    moved = (u["rchar"] + u["wchar"]) / (mib << 20)
    calls = (u["syscr"] + u["syscw"]) / mib
    print(f"host portholed: {u['cpu_s'] / mib * 1024:.2f} s CPU/GiB, "
          f"{calls:.0f} read+write calls/MiB, {moved:.2f} bytes moved "
          f"by them per byte delivered")
PY
)
	awk -F'\t' -v mb="$mb" "$AWK_MEDIAN"'
	NR > 1 { v[$1 "/" $2] = v[$1 "/" $2] " " $4 }
	END {
		printf "guest pulls of %d MiB, median MB/s (TCG guest, 2 vCPUs)\n", mb
		printf "%-18s %12s %12s\n", "destination", "vhost-user", "loopback"
		for (d = 1; d <= 2; d++) {
			dest = d == 1 ? "file" : "null"
			label = d == 1 ? "file on tmpfs" : "/dev/null"
			vh = med(v["vhost-user/" dest]); lo = med(v["loopback/" dest])
			ratio = lo > 0 ? vh / lo : 0
			printf "%-18s %12.1f %12.1f  (%.1fx)\n", label, vh, lo, ratio
		}
	}' "$tsv" >"$RESULTS/latest-vhost.txt"
	echo "$HOST_USE" >>"$RESULTS/latest-vhost.txt"
	sed 's/^/bench:   /' "$RESULTS/latest-vhost.txt" >&2
}

main() {
	local id t0
	t0=$(date +%s)
	ensure_packages
	NGINX_BIN=$(command -v nginx || echo /usr/sbin/nginx)
	mkdir -p "$BUILD" "$WORK" "$RESULTS"
	build_tools
	case " $PEERS " in *" porthole "*) build_porthole ;; esac

	TMP=$(mktemp -d /tmp/porthole-bench.XXXXXX)
	trap cleanup EXIT
	trap 'exit 130' INT TERM
	mkdir -p "$TMP/log"
	need_space
	define_scenarios
	make_inputs

	TSV=$RESULTS/latest.tsv
	RSS_TSV=$RESULTS/latest-rss.tsv
	META_TSV=$RESULTS/latest-meta.tsv
	SCEN_TSV=$RESULTS/latest-scenarios.tsv
	printf 'scenario\tpeer\trun\tseconds\tbytes\tfiles\trss_kib\tstatus\tload1\n' >"$TSV"
	printf 'scenario\tportholed_hwm_kib\tportholed_exit\n' >"$RSS_TSV"
	printf 'id\tkind\tbase\tlabel\tchart\n' >"$SCEN_TSV"
	write_meta

	case " $PEERS " in *" raw "*) start_raw ;; esac
	case " $PEERS " in *" nginx "*) start_nginx ;; esac

	for id in "${SCEN_IDS[@]}"; do
		if [ -n "${BENCH_SCENARIOS:-}" ]; then
			case " $BENCH_SCENARIOS " in *" $id "*) ;; *) continue ;; esac
		fi
		printf '%s\t%s\t%s\t%s\t%s\n' "$id" "${S_KIND[$id]}" "${S_BASE[$id]}" \
		    "${S_LABEL[$id]}" "${S_CHART[$id]}" >>"$SCEN_TSV"
		run_scenario "$id"
	done

	printf 'load_end\t%s\n' "$(cut -d' ' -f1-3 /proc/loadavg)" >>"$META_TSV"
	if [ "${BENCH_NESTING:-1}" != 0 ] && { [ -z "${BENCH_SCENARIOS:-}" ] ||
	    case " $BENCH_SCENARIOS " in *" nesting "*) true ;; *) false ;; esac; }; then
		run_nesting
	fi
	if [ "${BENCH_VHOST:-1}" != 0 ] && { [ -z "${BENCH_SCENARIOS:-}" ] ||
	    case " $BENCH_SCENARIOS " in *" vhost-user "*) true ;; *) false ;; esac; }; then
		run_vhost_bench
	fi
	[ "${BENCH_CACHE:-1}" = 0 ] || run_cache_bench
	# Only the sections after the table ran (e.g. BENCH_SCENARIOS=vhost-user):
	# no table to chart.
	if [ "$(wc -l <"$TSV")" -gt 1 ]; then
		"$BENCH_DIR/report.sh" "$RESULTS"
	fi
	log "done in $(( $(date +%s) - t0 )) s: $RESULTS/latest.md, $RESULTS/latest.png"
}

main "$@"
