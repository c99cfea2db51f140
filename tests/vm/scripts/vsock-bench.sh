# Guest pull throughput, the same way over either transport, for
# bench/run.sh: with PH_VHOST=1 the daemon is on the host and the guest's
# vsock device is its vhost-user back-end (vsock:2:7390); otherwise the
# daemon runs in this guest on the vsock loopback transport (vsock:1:7390)
# with the same file made here.  PH_RUNS pulls of big.bin (PH_BIG_MB MiB)
# to a file on tmpfs and as many to /dev/null, each a PH-METRIC line.
. /test/lib.sh

runs=${PH_RUNS:-3}
big_mb=${PH_BIG_MB:-256}
out=/tmp/vsock-bench
mkdir -p "$out"
if [ "${PH_VHOST:-0}" = 1 ]; then
	mode=vhost-user
	ep=vsock:2:7390
else
	mode=loopback
	ep=vsock:1:7390
	dd if=/dev/urandom of=/srv/repo/big.bin bs=1048576 count="$big_mb" \
	    2>/dev/null
	ph_portholed bench 7390 -r /srv/repo || exit 0
	# The daemon hashes a file once; that is not the transfer.
	porthole -e "$ep" stat /big.bin >/dev/null
fi
ph_wait_for reach-daemon 100 porthole -e "$ep" ping || exit 0
bytes=$((big_mb * 1048576))

i=1
while [ $i -le "$runs" ]; do
	rm -f "$out/big.bin"
	t0=$(ph_now_cs)
	if porthole -e "$ep" get -q /big.bin "$out/big.bin"; then
		dt=$(($(ph_now_cs) - t0))
		ph_metric "$mode-file-$i" "bytes=$bytes" "ms=$((dt * 10))" \
		    "mb_s=$(ph_rate "$bytes" "$dt")"
	else
		ph_result "$mode-file-$i" fail
	fi
	t0=$(ph_now_cs)
	if porthole -e "$ep" get -q /big.bin - >/dev/null; then
		dt=$(($(ph_now_cs) - t0))
		ph_metric "$mode-null-$i" "bytes=$bytes" "ms=$((dt * 10))" \
		    "mb_s=$(ph_rate "$bytes" "$dt")"
	else
		ph_result "$mode-null-$i" fail
	fi
	i=$((i + 1))
done
rm -f "$out/big.bin"
ph_result pulls pass "mode=$mode" "runs=$runs"
[ "$mode" = loopback ] && ph_portholed_stop bench
exit 0
