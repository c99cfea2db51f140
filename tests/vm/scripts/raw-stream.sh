# Raw AF_VSOCK stream over the loopback transport, no Porthole involved: the
# baseline for Porthole's pull throughput, and a check that the guest's vsock
# stack and the harness work at all.
. /test/lib.sh

mb=${PH_RAW_MB:-256}
port=${PH_RAW_PORT:-5201}

[ -c /dev/vsock ] && ph_result dev-vsock pass || \
    ph_result dev-vsock fail "msg=/dev/vsock missing after insmod"

# Edge sizes first: nothing, less than a block, blocks plus a tail.
for n in 0 5 $((4096 * 3 + 7)); do
	ph_check "bytes-$n" timeout 30 vsock_stream loop "$port" "$n"
done

out=$(timeout 120 vsock_stream loop "$port" $((mb * 1048576)) 2>&1)
rc=$?
printf '%s\n' "$out" | sed "s/^/# $PH_SCRIPT: /"
if [ $rc -eq 0 ]; then
	line=$(printf '%s\n' "$out" | grep '^VSOCK-STREAM ')
	ph_result "stream-${mb}m" pass
	ph_metric "stream-${mb}m" ${line#VSOCK-STREAM }
else
	ph_result "stream-${mb}m" fail "rc=$rc" "msg=$out"
fi
