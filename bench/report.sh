#!/usr/bin/env bash
# Turns the raw measurements that bench/run.sh wrote into latest.md (tables:
# median of the timed runs with min-max, ratios, peak RSS, targets) and
# latest.png (gnuplot bar chart). Can be re-run on its own:
#   bench/report.sh bench/results
set -euo pipefail

RES=${1:?usage: report.sh RESULTS_DIR}
TSV=$RES/latest.tsv
SCEN=$RES/latest-scenarios.tsv
RSS=$RES/latest-rss.tsv
META=$RES/latest-meta.tsv
for f in "$TSV" "$SCEN" "$RSS" "$META"; do
	[ -f "$f" ] || { echo "report.sh: missing $f" >&2; exit 1; }
done
DAT=$(mktemp /tmp/porthole-bench-chart.XXXXXX)
trap 'rm -f "$DAT"' EXIT

# One awk program reads all four files (told apart by FILENAME) and writes
# the Markdown to stdout and the chart data to $DAT.
awk -F'\t' -v dat="$DAT" -v meta="$META" -v scen="$SCEN" -v rss="$RSS" '
function isort(a, n,    i, j, t) {
	for (i = 2; i <= n; i++) {
		t = a[i]
		for (j = i - 1; j >= 1 && a[j] > t; j--)
			a[j + 1] = a[j]
		a[j + 1] = t
	}
}
# Sets MED, MIN, MAX from the space-separated list s; returns the count.
function stats(s,    a, n) {
	n = split(s, a, " ")
	if (n == 0)
		return 0
	isort(a, n)
	MIN = a[1]; MAX = a[n]
	MED = (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
	return n
}
function num(v) {
	if (v >= 100) return sprintf("%.0f", v)
	if (v >= 10) return sprintf("%.1f", v)
	return sprintf("%.2f", v)
}
# The row whose measurements stand for peer p in scenario id.
function src(id, p) {
	if ((id, p) in runs || base[id] == "")
		return id
	return base[id]
}
function cell(id, p,    s, n, c) {
	s = src(id, p)
	if (!((s, p) in runs))
		return "n/a"
	n = stats(vals[s, p])
	if (n == 0)
		return "FAILED (" fails[s, p] "/" runs[s, p] ")"
	c = num(MED) " (" num(MIN) "–" num(MAX) ")"
	if (fails[s, p] > 0)
		c = c " [" fails[s, p] " failed]"
	if (s != id)
		c = c " †"
	return c
}
function median(id, p,    s) {
	s = src(id, p)
	if (!((s, p) in runs) || stats(vals[s, p]) == 0)
		return ""
	return MED
}
function ratio(a, b) {
	if (a == "" || b == "" || b == 0)
		return "n/a"
	return sprintf("%.2fx", a / b)
}
function mib(kib) {
	return kib == "" ? "n/a" : sprintf("%.1f", kib / 1024)
}
function verdict(v, want) {
	if (v == "")
		return "not measured"
	# Rounded down, so that a miss never prints as the target itself.
	return sprintf("%.2fx: %s", int(v * 100) / 100, v >= want ? "met" : "MISSED")
}
function q(a, b) {
	return (a == "" || b == "" || b == 0) ? "" : a / b
}
FNR == 1 { next }	# headers
FILENAME == meta { M[$1] = $2; next }
FILENAME == scen {
	ids[++nids] = $1; kind[$1] = $2; base[$1] = $3; label[$1] = $4
	chart[$1] = $5
	next
}
FILENAME == rss { hwm[$1] = $2; hexit[$1] = $3; next }
{
	# scenario peer run seconds bytes files rss_kib status
	id = $1; p = $2
	if ($3 == 0)
		next	# warm-up
	if ($9 != "" && $9 + 0 > maxload[id])
		maxload[id] = $9 + 0
	runs[id, p]++
	if ($8 != 0) { fails[id, p]++; next }
	v = (kind[id] == "batch") ? $6 / $4 : $5 / 1e6 / $4
	vals[id, p] = vals[id, p] " " v
	mbs[id, p] = mbs[id, p] " " ($5 / 1e6 / $4)
	if ($7 > maxrss[id, p])
		maxrss[id, p] = $7
}
END {
	np = split("porthole raw nginx socat", P, " ")
	name["porthole"] = "Porthole"; name["raw"] = "raw limit"
	name["nginx"] = "nginx+curl"; name["socat"] = "socat"

	print "# Porthole benchmark results"
	print ""
	printf "%s, commit %s, %s runs per figure%s. ", M["date"], M["commit"],
	    M["runs"], M["quick"] == 1 ? " (**BENCH_QUICK smoke run: small files**)" : ""
	printf "%s, %s cores, %s, Linux %s, destination file system %s. ",
	    M["cpu"], M["cores"], M["memory"], M["kernel"], M["workfs"]
	printf "nginx %s, curl %s, socat %s, %s.\n", M["nginx"], M["curl"],
	    M["socat"], M["porthole"] == "" ? "Porthole not measured" : M["porthole"]
	print ""
	printf "Load average (1, 5, 15 min) at the start: %s; at the end: %s. ",
	    M["load_start"], M["load_end"]
	print "Anything else running on the machine shows up in the figures."
	printf "Single-core ceilings measured in the same run: SHA-256 %s MB/s (openssl);", M["sha256_mbs"]
	printf " zstd level 1 on 1 MiB blocks of the text file: ratio %s, compress %s MB/s,", M["zstd1_ratio"], M["zstd1_comp_mbs"]
	printf " decompress %s MB/s.\n", M["zstd1_decomp_mbs"]
	print ""
	print "Each figure: median of the timed runs (min–max), after one untimed"
	print "warm-up per peer. MB = 10^6 bytes. All transfers over unix sockets,"
	print "sources in a hot page cache; \"-> file\" times include making the"
	print "data durable (Porthole fsyncs; raw_recv fsyncs; curl and socat are"
	print "followed by sync(1) on the file, or syncfs for the batch). See"
	print "bench/README.md."
	print ""
	print "| Scenario | Unit | Porthole | raw limit | nginx+curl | socat | Porthole/raw | Porthole/nginx | load |"
	print "|---|---|---|---|---|---|---|---|---|"
	anybase = 0
	for (i = 1; i <= nids; i++) {
		id = ids[i]
		unit = (kind[id] == "batch") ? "files/s" : (kind[id] == "conc") ? "MB/s total" : "MB/s"
		line = "| " label[id] " | " unit
		for (k = 1; k <= np; k++) {
			line = line " | " cell(id, P[k])
			if (src(id, P[k]) != id && ((base[id], P[k]) in runs))
				anybase = 1
		}
		ph = median(id, "porthole")
		line = line " | " ratio(ph, median(id, "raw")) " | " ratio(ph, median(id, "nginx"))
		line = line " | " ((id in maxload) ? sprintf("%.1f", maxload[id]) : "?") " |"
		print line
		med[id] = ph
		medng[id] = median(id, "nginx")
		medraw[id] = median(id, "raw")
	}
	print ""
	print "load: the highest 1-minute load average seen before a timed run of the"
	print "row. The benchmark itself adds about 1-2 on a 2-core machine (far more"
	print "in the concurrent row, whose own clients count); more than that means"
	print "other work was running and the row is not reliable."
	if (anybase) {
		print ""
		print "† the same measurement as the row it is based on (this row only changes a Porthole option)."
	}

	print ""
	print "## Peak memory (RSS, MiB)"
	print ""
	print "portholed: VmHWM read just before SIGTERM; one fresh daemon per scenario."
	print "Clients: the largest peak RSS of any client process over the timed runs"
	print "(for the concurrent scenario, of any one of the clients)."
	print ""
	print "| Scenario | portholed | porthole | raw_recv | curl | socat |"
	print "|---|---|---|---|---|---|"
	for (i = 1; i <= nids; i++) {
		id = ids[i]
		line = "| " label[id] " | " ((id in hwm) ? mib(hwm[id]) : "n/a")
		if ((id in hexit) && hexit[id] != 0)
			line = line " (exit " hexit[id] ")"
		for (k = 1; k <= np; k++)
			line = line " | " (((id, P[k]) in maxrss) ? mib(maxrss[id, P[k]]) : "n/a")
		print line " |"
	}

	print ""
	print "## Targets"
	print ""
	print "| Target | Result |"
	print "|---|---|"
	printf "| large hot file -> file: Porthole >= 0.9x raw | %s |\n", verdict(q(med["random-file"], medraw["random-file"]), 0.9)
	printf "| large hot file -> file: Porthole >= 1.0x nginx+curl | %s |\n", verdict(q(med["random-file"], medng["random-file"]), 1.0)
	printf "| large hot file -> /dev/null: Porthole >= 0.9x raw | %s |\n", verdict(q(med["random-null"], medraw["random-null"]), 0.9)
	printf "| large hot file -> /dev/null: Porthole >= 1.0x nginx+curl | %s |\n", verdict(q(med["random-null"], medng["random-null"]), 1.0)
	printf "| batch: Porthole >= 2x nginx+curl files/s | %s |\n", verdict(q(med["batch"], medng["batch"]), 2.0)
	printf "| text -> file: zstd >= 1.5x --no-zstd | %s |\n", verdict(q(med["text-file-zstd"], med["text-file-plain"]), 1.5)
	printf "| text -> /dev/null: zstd >= 1.5x --no-zstd | %s |\n", verdict(q(med["text-null-zstd"], med["text-null-plain"]), 1.5)

	# Chart data: label, then median min max in MB/s for each peer.
	for (i = 1; i <= nids; i++) {
		id = ids[i]
		line = "\"" chart[id] "\""
		for (k = 1; k <= np; k++) {
			s = src(id, P[k])
			if (((s, P[k]) in runs) && stats(mbs[s, P[k]]) > 0)
				line = line sprintf(" %.1f %.1f %.1f", MED, MIN, MAX)
			else
				line = line " - - -"
		}
		print line > dat
	}
}' "$META" "$SCEN" "$RSS" "$TSV" >"$RES/latest.md.tmp"
mv "$RES/latest.md.tmp" "$RES/latest.md"

if ! command -v gnuplot >/dev/null; then
	echo "report.sh: gnuplot not installed, no chart" >&2
	exit 0
fi
gnuplot <<EOF
set terminal pngcairo size 1280,640 font "sans,10"
set output "$RES/latest.png.tmp"
set title "Porthole vs raw limit, nginx+curl, socat (median of runs, bars: min-max; log scale)"
set ylabel "MB/s"
set logscale y
set yrange [1:*]
set grid ytics
set key top right
set datafile missing "-"
set style data histogram
set style histogram errorbars gap 2 lw 1
set style fill solid 0.8 border -1
set boxwidth 0.9
set xtics rotate by -25 noenhanced
plot "$DAT" using 2:3:4:xtic(1) title "Porthole" lc rgb "#1f77b4", \
     "" using 5:6:7 title "raw limit" lc rgb "#7f7f7f", \
     "" using 8:9:10 title "nginx+curl" lc rgb "#2ca02c", \
     "" using 11:12:13 title "socat" lc rgb "#ff7f0e"
EOF
mv "$RES/latest.png.tmp" "$RES/latest.png"
