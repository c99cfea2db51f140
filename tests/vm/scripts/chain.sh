# A relay chain over real AF_VSOCK (loopback transport, CID 1) in one guest:
# L0 serves /srv/repo on vsock::7390 and L1, L2, L3 each relay to the level
# before on the next port (portholed --upstream vsock:1:PORT), with their own
# caches.  porthole pulls at L3, cold and then warm, and directly from L0 for
# comparison; contents are compared byte for byte and by SHA-256, and the
# throughput of each pull is reported.
. /test/lib.sh

mb=${PH_CHAIN_MB:-32}
size=$((mb * 1048576))
repo=/srv/repo
out=/tmp/chain/out
run=/tmp/chain/run
mkdir -p "$out" "$run"

# timed_pull NAME PORT: pulls /chain.bin from vsock:1:PORT into $out/NAME,
# checks it and reports its throughput as metric NAME; sets $ms.
timed_pull() {
	_name=$1 _port=$2
	rm -f "$out/$_name"
	t0=$(ph_now_cs)
	porthole -e "vsock:1:$_port" get /chain.bin "$out/$_name" \
	    2>"$run/$_name.err"
	_rc=$?
	dt=$(($(ph_now_cs) - t0))
	ms=$((dt * 10))
	ph_show_file "$_name" "$run/$_name.err"
	if [ $_rc -ne 0 ]; then
		ph_result "$_name" fail "rc=$_rc" \
		    "msg=$(head -n 1 "$run/$_name.err")"
		return 1
	fi
	ph_result "$_name" pass "bytes=$size" "cs=$dt"
	ph_metric "$_name" "bytes=$size" "ms=$ms" \
	    "mb_s=$(ph_rate "$size" "$dt")"
	got=$(sha256sum "$out/$_name" | cut -d' ' -f1)
	[ "$got" = "$sum" ] && ph_result "$_name-sha256" pass || \
	    ph_result "$_name-sha256" fail "msg=got $got, want $sum"
	grep -q "sha256:$sum" "$run/$_name.err" && \
	    ph_result "$_name-verified" pass || \
	    ph_result "$_name-verified" fail "msg=no verified line"
	rm -f "$out/$_name"
	return 0
}

# -- The file is made here rather than shipped in the initramfs. ---------
if dd if=/dev/urandom of="$repo/chain.bin" bs=1048576 count="$mb" \
    2>/dev/null && [ "$(stat -c %s "$repo/chain.bin")" = "$size" ]; then
	ph_result make-file pass "bytes=$size"
else
	ph_result make-file fail "msg=cannot write $size bytes"
fi
sum=$(sha256sum "$repo/chain.bin" | cut -d' ' -f1)

# -- L0 and three relays, each on its own port -----------------------------
ph_portholed l0 7390 -r "$repo"
ph_portholed l1 7391 --upstream vsock:1:7390 --cache-size 256M
ph_portholed l2 7392 --upstream vsock:1:7391 --cache-size 256M
ph_portholed l3 7393 --upstream vsock:1:7392 --cache-size 256M

# -- Pulls: direct (twice, so L0 has the digest), then L3 cold and warm ----
timed_pull direct-first 7390
timed_pull direct 7390
direct_ms=$ms
timed_pull chain-cold 7393
cold_ms=$ms
timed_pull chain-warm 7393
warm_ms=$ms
# Percent of the direct pull's throughput (time ratio inverted).
[ "$direct_ms" -gt 0 ] && ph_metric chain-vs-direct \
    "cold_pct=$((direct_ms * 100 / (cold_ms > 0 ? cold_ms : 1)))" \
    "warm_pct=$((direct_ms * 100 / (warm_ms > 0 ? warm_ms : 1)))"

# -- Small files and the tree through the chain ----------------------------
for f in hello.txt empty docs/readme.md tools/run.sh data/blob-odd.bin \
    "name with spaces.txt"; do
	mkdir -p "$out/small/$(dirname "$f")"
	ph_check "get.$(ph_tag "$f")" porthole -e vsock:1:7393 get -q "/$f" \
	    "$out/small/$f" && \
	    ph_check "cmp.$(ph_tag "$f")" cmp "$repo/$f" "$out/small/$f"
done
for p in /hello.txt /docs /tools/run.sh; do
	porthole -e vsock:1:7390 stat --json "$p" >"$run/stat0" 2>&1
	porthole -e vsock:1:7393 stat --json "$p" >"$run/stat3" 2>&1
	ph_check "stat-same.$(ph_tag "$p")" cmp "$run/stat0" "$run/stat3"
done
porthole -e vsock:1:7390 ls -l /docs >"$run/ls0" 2>&1
porthole -e vsock:1:7393 ls -l /docs >"$run/ls3" 2>&1
ph_check ls-same cmp "$run/ls0" "$run/ls3"
ph_expect_rc missing-via-chain 3 porthole -e vsock:1:7393 stat /no/such

# -- Stop from the edge in, then check the relays talked over vsock -------
for n in l3 l2 l1 l0; do
	ph_portholed_stop "$n"
done
grep -q 'upstream vsock:1:7390: connected' "$(ph_portholed_log l1)" && \
    ph_result l1-connected pass || \
    ph_result l1-connected fail "msg=no 'connected' line in L1's log"
grep -q 'peer=vsock:.*op=GET path=/chain.bin result=OK' \
    "$(ph_portholed_log l2)" && ph_result l2-served pass || \
    ph_result l2-served fail "msg=no vsock GET line for /chain.bin at L2"
