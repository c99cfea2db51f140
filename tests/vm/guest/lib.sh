# Helpers for guest test scripts; source with `. /test/lib.sh`.
# Results go to the serial console as PH-RESULT / PH-METRIC lines (see
# tests/vm/vmlib.py for the format).  /test/env holds settings the host
# passed with --set KEY=VALUE.

[ -r /test/env ] && . /test/env
: "${PH_SCRIPT:=script}"

# Per-boot values from the kernel command line, for tests that boot one
# image as several VMs or several times: ph.vm=NAME, ph.run=N.
for _w in $(cat /proc/cmdline); do
	case $_w in
	ph.vm=*) PH_VM=${_w#ph.vm=} ;;
	ph.run=*) PH_RUN=${_w#ph.run=} ;;
	esac
done
: "${PH_VM:=vm0}" "${PH_RUN:=1}"

# ph_result NAME pass|fail [KEY=VALUE ...] [msg=TEXT]
ph_result() {
	_n=$1 _s=$2
	shift 2
	echo "PH-RESULT name=$PH_SCRIPT.$_n status=$_s $*"
}

# ph_tag TEXT: TEXT as a result name, which cannot hold spaces or slashes.
ph_tag() {
	printf '%s' "$1" | tr ' /' '__'
}

# The small files of the test repository (vmtest.py makes them), and the
# one whose name has spaces.
PH_SMALL="hello.txt empty docs/readme.md docs/notes/deep.txt tools/run.sh
data/blob-1m.bin data/blob-odd.bin"
PH_SPACES="name with spaces.txt"

# ph_get_small EP DIR: pulls each small file and the one with spaces from
# EP into DIR, one connection each, with a result get.NAME per file.
ph_get_small() {
	# shellcheck disable=SC2086
	for _f in $PH_SMALL "$PH_SPACES"; do
		mkdir -p "$2/$(dirname "$_f")"
		ph_check "get.$(ph_tag "$_f")" porthole -e "$1" get -q "/$_f" \
		    "$2/$_f"
	done
}

# ph_metric NAME KEY=VALUE ...
ph_metric() {
	_n=$1
	shift
	echo "PH-METRIC name=$PH_SCRIPT.$_n $*"
}

# ph_host_touch NAME: asks the harness to create NAME in the host's
# repository (vhost-user tests), so a later boot can tell it happened.
ph_host_touch() {
	echo "PH-HOST touch $1"
}

# ph_host_pause SECONDS NAME: asks the harness to pause this whole VM for
# SECONDS (QEMU's stop and cont, vhost-user tests), then create NAME in
# the host's repository to say it is over.
ph_host_pause() {
	echo "PH-HOST pause $1 $2"
}

# ph_note TEXT: free text for the console log only.
ph_note() {
	echo "# $PH_SCRIPT: $*"
}

# ph_check NAME CMD...: pass when CMD exits 0.  CMD's output goes to the log
# prefixed with '#', so it cannot be mistaken for a result line.
ph_check() {
	_n=$1
	shift
	_out=$("$@" 2>&1)
	_rc=$?
	[ -n "$_out" ] && printf '%s\n' "$_out" | sed "s/^/# $PH_SCRIPT.$_n: /"
	if [ $_rc -eq 0 ]; then
		ph_result "$_n" pass
	else
		ph_result "$_n" fail "rc=$_rc" "msg=command failed: $*"
	fi
	return $_rc
}

# ph_expect_rc NAME "RC..." CMD...: pass when CMD exits with one of the
# space-separated codes in RC.
ph_expect_rc() {
	_n=$1 _want=$2
	shift 2
	_out=$("$@" 2>&1)
	_rc=$?
	[ -n "$_out" ] && printf '%s\n' "$_out" | sed "s/^/# $PH_SCRIPT.$_n: /"
	for _w in $_want; do
		if [ "$_rc" = "$_w" ]; then
			ph_result "$_n" pass "rc=$_rc"
			return 0
		fi
	done
	ph_result "$_n" fail "rc=$_rc" "msg=wanted exit code $_want: $*"
	return 1
}

# ph_now_cs: guest uptime in centiseconds (busybox date has no %N).
ph_now_cs() {
	awk '{ split($1, t, "."); print t[1] * 100 + substr(t[2] "00", 1, 2) }' \
	    /proc/uptime
}

# ph_rate BYTES CENTISECONDS: decimal MB/s with one decimal place.
ph_rate() {
	awk -v b="$1" -v c="$2" 'BEGIN {
		if (c < 1) c = 1
		printf "%.1f", b / (c / 100) / 1000000
	}'
}

# ph_wait_for NAME TRIES CMD...: retries CMD every 0.1 s until it exits 0.
ph_wait_for() {
	_n=$1 _tries=$2
	shift 2
	_i=0
	while [ $_i -lt "$_tries" ]; do
		"$@" >/dev/null 2>&1 && return 0
		sleep 0.1
		_i=$((_i + 1))
	done
	ph_result "$_n" fail "msg=gave up waiting for: $*"
	return 1
}

# ph_show_file TAG FILE: copies a file into the log, each line prefixed.
ph_show_file() {
	[ -s "$2" ] && sed "s/^/# $PH_SCRIPT.$1: /" "$2"
	return 0
}

# ph_portholed NAME PORT [ARGS...]: starts portholed on vsock::PORT with its
# own control socket, state and log under /tmp/portholed-NAME, then waits
# (up to 10 s) until `porthole ping` over vsock:1:PORT answers.  Reports
# NAME-up.  Stop it with ph_portholed_stop NAME.
ph_portholed() {
	_name=$1 _port=$2
	shift 2
	_dir=/tmp/portholed-$_name
	mkdir -p "$_dir/state" "$_dir/cache"
	portholed -l "vsock::$_port" -c "$_dir/ctl" --state-dir "$_dir/state" \
	    --cache-dir "$_dir/cache" "$@" >"$_dir/log" 2>&1 &
	echo $! >"$_dir/pid"
	if ph_wait_for "$_name-up" 100 porthole -e "vsock:1:$_port" ping; then
		ph_result "$_name-up" pass
		return 0
	fi
	ph_show_file "$_name" "$_dir/log"
	return 1
}

# ph_portholed_stop NAME: SIGTERM, then a result NAME-exit that passes when
# the daemon exits 0 within 15 s; copies its log to the console.
ph_portholed_stop() {
	_dir=/tmp/portholed-$1
	_pid=$(cat "$_dir/pid")
	kill -TERM "$_pid"
	_i=0
	while kill -0 "$_pid" 2>/dev/null && [ $_i -lt 150 ]; do
		sleep 0.1
		_i=$((_i + 1))
	done
	if kill -0 "$_pid" 2>/dev/null; then
		kill -KILL "$_pid"
		ph_result "$1-exit" fail "msg=still running 15 s after SIGTERM"
	else
		wait "$_pid"
		_rc=$?
		[ $_rc -eq 0 ] && ph_result "$1-exit" pass || \
		    ph_result "$1-exit" fail "rc=$_rc"
	fi
	ph_show_file "$1" "$_dir/log"
}

# ph_portholed_log NAME: path of that daemon's log.
ph_portholed_log() {
	echo "/tmp/portholed-$1/log"
}
