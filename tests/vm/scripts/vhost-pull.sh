# Porthole through a virtio-vsock device that the HOST's portholed provides
# over vhost-user: this guest has no network card and no vsock loopback; its
# only way out is vsock:2:7390, served by the daemon on the host.  Contents
# are checked against the SHA-256 digests the host computed of its files
# (/srv/repo.sha256) as well as by porthole's own verification.
# On a second run (PH_RUN=2: QEMU exited and reconnected to the same
# daemon) a shorter pass shows the device works again.
. /test/lib.sh

ep=${PH_ENDPOINT:-vsock:2:7390}
out=/tmp/vhost-pull/out
run=/tmp/vhost-pull/run
sums=/srv/repo.sha256
mkdir -p "$out" "$run"

ph() {
	porthole -e "$ep" "$@"
}

# check_sum NAME FILE...: the pulled files' digests match the host's.
check_sum() {
	_n=$1
	shift
	: >"$run/$_n.sha256"
	for _f in "$@"; do
		grep "  $_f\$" "$sums" >>"$run/$_n.sha256"
	done
	ph_check "$_n" sh -c "cd '$out' && sha256sum -c '$run/$_n.sha256'"
}

grep -q '^vsock ' /proc/modules && ! grep -q '^vsock_loopback ' /proc/modules \
    && ph_result no-loopback pass || ph_result no-loopback fail \
    "msg=expected the virtio transport only"
[ -z "$(ls /sys/class/net | grep -v '^lo$')" ] && ph_result no-nic pass || \
    ph_result no-nic fail "msg=network interfaces: $(ls /sys/class/net)"
ph_note "vm $PH_VM, run $PH_RUN"

if ! ph_wait_for reach-host 100 ph ping; then
	exit 0
fi
ph_check ping ph ping

if [ "$PH_RUN" != 1 ]; then
	# Reconnected: a small file and a 1 MiB one, verified.
	ph_check get-hello ph get -q /hello.txt "$out/hello.txt"
	mkdir -p "$out/data"
	ph_check get-blob ph get -q /data/blob-1m.bin "$out/data/blob-1m.bin"
	check_sum sha256-reconnect hello.txt data/blob-1m.bin
	exit 0
fi

# -- Small files, one connection each ---------------------------------------
small=$PH_SMALL
sp=$PH_SPACES
ph_get_small "$ep" "$out"
# shellcheck disable=SC2086
check_sum sha256-small $small
ph_check sha256-spaces sh -c "cd '$out' && grep '  $sp\$' '$sums' | sha256sum -c"
m=$(stat -c %a "$out/tools/run.sh")
[ "$m" = 755 ] && ph_result mode-kept pass || \
    ph_result mode-kept fail "msg=tools/run.sh mode $m, want 755"

# -- Several files over one connection ----------------------------------------
mkdir -p "$out/multi"
ph_check get-multi ph get -q /hello.txt /data/blob-odd.bin /docs/readme.md \
    "$out/multi/"
ph_check sha256-multi sh -c "cd '$out/multi' && grep -E '  (hello.txt|data/blob-odd.bin|docs/readme.md)\$' '$sums' | sed 's|  .*/|  |' | sha256sum -c"

# -- The big file, timed --------------------------------------------------------
big=$(ph stat --json /big.bin | sed -n 's/.*"size": *\([0-9]*\).*/\1/p')
t0=$(ph_now_cs)
ph get /big.bin "$out/big.bin" 2>"$run/big.err"
rc=$?
dt=$(($(ph_now_cs) - t0))
ph_show_file get-big "$run/big.err"
if [ $rc -eq 0 ]; then
	ph_result get-big pass "bytes=$big" "cs=$dt"
	ph_metric vhost-pull-big "bytes=$big" "ms=$((dt * 10))" \
	    "mb_s=$(ph_rate "$big" "$dt")"
else
	ph_result get-big fail "rc=$rc" "msg=$(head -n 1 "$run/big.err")"
fi
check_sum sha256-big big.bin
want=$(grep '  big.bin$' "$sums" | cut -d' ' -f1)
grep -q "sha256:$want" "$run/big.err" && ph_result verified-line pass || \
    ph_result verified-line fail "msg=no 'verified sha256:$want' line"
rm -f "$out/big.bin"

# To stdout (bench/run.sh times this for the big file).
want1=$(grep '  data/blob-1m.bin$' "$sums" | cut -d' ' -f1)
got=$(ph get -q /data/blob-1m.bin - | sha256sum | cut -d' ' -f1)
[ "$got" = "$want1" ] && ph_result get-stdout pass || \
    ph_result get-stdout fail "msg=sha256 $got, want $want1"

# -- stat, ls and refusals -------------------------------------------------------
ph stat /big.bin >"$run/stat.out" 2>&1 && grep -q "$want" "$run/stat.out" && \
    ph_result stat pass || ph_result stat fail "msg=no digest in stat"
ph ls / >"$run/ls.out" 2>&1
bad=""
for n in big.bin data docs empty emptydir hello.txt tools; do
	grep -q "$n" "$run/ls.out" || bad="$bad $n"
done
[ -z "$bad" ] && ph_result ls pass || ph_result ls fail "msg=missing:$bad"
ph_expect_rc escape-symlink 4 ph get -q /escape/passwd "$out/x1"
ph_expect_rc escape-dotdot 4 ph stat ../../etc/passwd
ph_expect_rc not-found 3 ph get -q /nope "$out/x2"
left=$(find "$out" -name '*.part' -o -name 'x[0-9]')
[ -z "$left" ] && ph_result left-nothing pass || \
    ph_result left-nothing fail "msg=$left"
