# Porthole over real AF_VSOCK (loopback transport, CID 1): portholed serves
# /srv/repo on vsock::PORT and porthole pulls from vsock:1:PORT the way a
# user would type it.  Contents are compared byte for byte (cmp) and by the
# SHA-256 digests the host computed when it built the initramfs.
. /test/lib.sh

port=${PH_PORT:-7390}
ep=vsock:1:$port
repo=/srv/repo
out=/tmp/pull/out
run=/tmp/pull/run
big_mb=${PH_BIG_MB:-256}
big=$((big_mb * 1048576))
mkdir -p "$out" "$run"

ph() {
	porthole -e "$ep" "$@"
}

# -- The big file is made here rather than shipped in the initramfs. -------
t0=$(ph_now_cs)
if dd if=/dev/urandom of="$repo/big.bin" bs=1048576 count="$big_mb" \
    2>/dev/null && [ "$(stat -c %s "$repo/big.bin")" = "$big" ]; then
	ph_result make-big pass "bytes=$big" "cs=$(($(ph_now_cs) - t0))"
else
	ph_result make-big fail "msg=cannot write $big bytes to $repo/big.bin"
fi

# -- Daemon ---------------------------------------------------------------
ph_portholed hostd "$port" -r "$repo"
ph_check ping ph ping

# -- Small files, one per connection --------------------------------------
small=$PH_SMALL
sp=$PH_SPACES
ph_get_small "$ep" "$out"

# Byte for byte against the repository, and digests against the host's.
bad=""
for f in $small; do
	cmp "$repo/$f" "$out/$f" || bad="$bad $f"
done
cmp "$repo/$sp" "$out/$sp" || bad="$bad $(ph_tag "$sp")"
[ -z "$bad" ] && ph_result cmp-small pass || \
    ph_result cmp-small fail "msg=differ:$bad"
ph_check sha256-small sh -c "cd '$out' && sha256sum -c '$repo.sha256'"

[ -f "$out/empty" ] && [ ! -s "$out/empty" ] && \
    ph_result empty-file pass || ph_result empty-file fail \
    "msg=$out/empty missing or not empty"

# Mode and mtime come from META.
m=$(stat -c %a "$out/tools/run.sh")
[ "$m" = 755 ] && ph_result mode-kept pass || \
    ph_result mode-kept fail "msg=tools/run.sh mode $m, want 755"
m=$(stat -c %a "$out/docs/notes/deep.txt")
[ "$m" = 600 ] && ph_result mode-kept-600 pass || \
    ph_result mode-kept-600 fail "msg=deep.txt mode $m, want 600"
a=$(stat -c %Y "$repo/data/blob-1m.bin")
b=$(stat -c %Y "$out/data/blob-1m.bin")
[ "$a" = "$b" ] && ph_result mtime-kept pass || \
    ph_result mtime-kept fail "msg=mtime $b, want $a"

# -- Several files over one connection into a directory ------------------
mkdir -p "$out/multi"
ph_check get-multi ph get -q /hello.txt /empty /data/blob-odd.bin \
    /docs/readme.md "$out/multi/"
bad=""
for f in hello.txt empty data/blob-odd.bin docs/readme.md; do
	cmp "$repo/$f" "$out/multi/$(basename "$f")" || bad="$bad $f"
done
[ -z "$bad" ] && ph_result cmp-multi pass || \
    ph_result cmp-multi fail "msg=differ:$bad"

# One JSON object per file on stdout.
hsum=$(sha256sum "$repo/hello.txt" | cut -d' ' -f1)
ph get -q --json /hello.txt "$out/hello-json.txt" >"$run/get.json" 2>&1
rc=$?
ph_show_file get-json "$run/get.json"
[ $rc -eq 0 ] && grep -q "$hsum" "$run/get.json" && \
    grep -q '^{.*}$' "$run/get.json" && ph_result get-json pass || \
    ph_result get-json fail "rc=$rc"

# -- Resume from a partial download --------------------------------------
head -c 300001 "$repo/data/blob-1m.bin" >"$out/resumed.bin.part"
ph_check get-resume ph get -q --resume /data/blob-1m.bin "$out/resumed.bin"
ph_check cmp-resume cmp "$repo/data/blob-1m.bin" "$out/resumed.bin"

# -- The big file, timed --------------------------------------------------
t0=$(ph_now_cs)
ph get /big.bin "$out/big.bin" 2>"$run/big.err"
rc=$?
dt=$(($(ph_now_cs) - t0))
ph_show_file get-big "$run/big.err"
if [ $rc -eq 0 ]; then
	ph_result get-big pass "bytes=$big" "cs=$dt"
	ph_metric pull-big "bytes=$big" "ms=$((dt * 10))" \
	    "mb_s=$(ph_rate "$big" "$dt")"
else
	ph_result get-big fail "rc=$rc" "msg=$(head -n 1 "$run/big.err")"
fi
ph_check cmp-big cmp "$repo/big.bin" "$out/big.bin"
# Timed too: SHA-256 speed in this guest bounds any verified transfer.
t0=$(ph_now_cs)
src_sum=$(sha256sum "$repo/big.bin" | cut -d' ' -f1)
dt=$(($(ph_now_cs) - t0))
ph_metric busybox-sha256sum "bytes=$big" "ms=$((dt * 10))" \
    "mb_s=$(ph_rate "$big" "$dt")"
dst_sum=$(sha256sum "$out/big.bin" | cut -d' ' -f1)
[ -n "$src_sum" ] && [ "$src_sum" = "$dst_sum" ] && \
    ph_result sha256-big pass "sha256=$src_sum" || \
    ph_result sha256-big fail "msg=source $src_sum, pulled $dst_sum"
# porthole's own report names the digest it verified.
grep -q "sha256:$src_sum" "$run/big.err" && \
    ph_result verified-line pass || \
    ph_result verified-line fail "msg=no 'verified sha256:$src_sum' line"
rm -f "$out/big.bin"

# Again: the daemon may now answer from its digest cache, so this shows the
# transfer with less hashing in front of it.
t0=$(ph_now_cs)
if ph_check get-big-again ph get -q /big.bin "$out/big.bin"; then
	dt=$(($(ph_now_cs) - t0))
	ph_metric pull-big-again "bytes=$big" "ms=$((dt * 10))" \
	    "mb_s=$(ph_rate "$big" "$dt")"
fi
rm -f "$out/big.bin"

# -- stat and ls -----------------------------------------------------------
ph stat /big.bin >"$run/stat.out" 2>&1
rc=$?
ph_show_file stat "$run/stat.out"
[ $rc -eq 0 ] && grep -q "$big" "$run/stat.out" && \
    grep -q "$src_sum" "$run/stat.out" && ph_result stat pass || \
    ph_result stat fail "rc=$rc" "msg=size $big or digest missing"
ph stat --json /hello.txt >"$run/stat.json" 2>&1
rc=$?
ph_show_file stat-json "$run/stat.json"
[ $rc -eq 0 ] && grep -q "$hsum" "$run/stat.json" && \
    grep -q '^{.*}$' "$run/stat.json" && ph_result stat-json pass || \
    ph_result stat-json fail "rc=$rc"
ph_expect_rc stat-missing 3 ph stat /no/such/file

ph ls / >"$run/ls.out" 2>&1
rc=$?
ph_show_file ls "$run/ls.out"
bad=""
for n in big.bin data docs empty emptydir hello.txt tools \
    "name with spaces.txt"; do
	grep -q "$n" "$run/ls.out" || bad="$bad $(ph_tag "$n")"
done
[ $rc -eq 0 ] && [ -z "$bad" ] && ph_result ls pass || \
    ph_result ls fail "rc=$rc" "msg=missing:$bad"
ph ls -l /docs >"$run/ls-l.out" 2>&1
rc=$?
ph_show_file ls-l "$run/ls-l.out"
[ $rc -eq 0 ] && grep -q readme.md "$run/ls-l.out" && \
    grep -q notes "$run/ls-l.out" && ph_result ls-l pass || \
    ph_result ls-l fail "rc=$rc"

# -- Refusals ------------------------------------------------------------
ph_expect_rc escape-dotdot 4 ph get -q ../etc/ph/secret "$out/x1"
ph_expect_rc escape-symlink 4 ph get -q /escape/ph/secret "$out/x2"
ph_expect_rc escape-symlink-stat 4 ph stat /escape/ph/secret
ph_expect_rc not-found 3 ph get -q /nope "$out/x3"
ph_expect_rc get-dir 3 ph get -q /docs "$out/x4"
left=$(ls "$out" | grep -E '^x[0-9]' )
[ -z "$left" ] && ph_result refused-left-nothing pass || \
    ph_result refused-left-nothing fail "msg=left behind: $left"
left=$(find "$out" -name '*.part')
[ -z "$left" ] && ph_result no-part-files pass || \
    ph_result no-part-files fail "msg=$left"

# -- Daemon log and clean shutdown ---------------------------------------
ph_portholed_stop hostd
grep -q 'peer=vsock:.*op=GET path=/big.bin result=OK' \
    "$(ph_portholed_log hostd)" && ph_result daemon-log pass || \
    ph_result daemon-log fail "msg=no vsock GET line for /big.bin"
