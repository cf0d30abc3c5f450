#!/usr/bin/env bash
# perf-bench.sh: how fast and how lean is `delayctl bench`?
#
# 1. Generator efficiency: the maximum requests/s of `delayctl bench --rate 0` against wrk with
#    the same number of connections, both attacking the same minimal Go server
#    (pkg/bench/internal/perfserver). The server is pinned to CPU 0 and every generator to
#    CPU 1, so each generator gets exactly one core. Runs alternate (wrk, delayctl fast,
#    delayctl std) for ROUNDS rounds so that noise on a shared machine hits all alike. The
#    verdict is the median of the per-round ratios (each ratio pairs runs seconds apart);
#    the ratio of the medians is printed too. Target: fast/wrk >= 0.7.
# 2. Memory: peak RSS (/usr/bin/time -v) of an attack of at least 1,000,000 requests that
#    also streams every result to a gob file, and of `delayctl bench report` over that file.
#    Target: under 200 MiB each.
#
# Usage: scripts/perf-bench.sh            (defaults: DUR=5s CONNS=50 ROUNDS=7)
#        VEGETA=/path/to/vegeta scripts/perf-bench.sh   (adds the vegeta CLI itself as a reference:
#        vegeta attack -rate=0 -max-workers=CONNS | vegeta report, both on CPU 1)
#        DUR=5s ROUNDS=1 SKIP_MEMORY=1 scripts/perf-bench.sh
set -euo pipefail
cd "$(dirname "$0")/.."

OUT=${OUT:-$(mktemp -d /tmp/perf-bench.XXXXXX)}
DUR=${DUR:-5s}
CONNS=${CONNS:-50}
ROUNDS=${ROUNDS:-7}
PORT=${PORT:-18080}
URL="http://127.0.0.1:${PORT}/"
MIN_REQUESTS=${MIN_REQUESTS:-1000000}

for tool in wrk taskset /usr/bin/time python3; do
	command -v "$tool" >/dev/null || { echo "perf-bench: $tool is required (apt-get install -y wrk time util-linux python3)" >&2; exit 2; }
done
[ "$(nproc)" -ge 2 ] || { echo "perf-bench: needs 2 CPUs (server on CPU 0, generator on CPU 1)" >&2; exit 2; }

go build -o "$OUT/perfserver" ./pkg/bench/internal/perfserver
go build -o "$OUT/delayctl" ./cmd/delayctl

taskset -c 0 "$OUT/perfserver" -addr "127.0.0.1:${PORT}" &
SERVER=$!
trap 'kill "$SERVER" 2>/dev/null || true' EXIT
for _ in $(seq 50); do
	if (exec 3<>"/dev/tcp/127.0.0.1/${PORT}") 2>/dev/null; then break; fi
	sleep 0.1
done
kill -0 "$SERVER" 2>/dev/null || { echo "perf-bench: perfserver did not start (port ${PORT} in use? set PORT=)" >&2; exit 1; }

json_rate() { python3 -c 'import json,sys; print("%.0f" % json.load(sys.stdin)["rate"])'; }
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

echo "perf-bench: $(date -u +%FT%TZ), $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg), go $(go env GOVERSION), $(wrk -v 2>&1 | head -1 | cut -d' ' -f1-2)"
echo "server: perfserver on CPU 0; generators on CPU 1; ${CONNS} connections; ${DUR} per run; ${ROUNDS} rounds"
printf '%-6s %12s %16s %16s %10s %10s' round wrk_req/s delayctl_fast delayctl_std fast/wrk std/wrk
[ -n "${VEGETA:-}" ] && printf ' %12s %11s' vegeta_cli vegeta/wrk
echo
WRK=() FAST=() STD=() RF=() RS=() RV=()
for r in $(seq "$ROUNDS"); do
	w=$(taskset -c 1 wrk -t1 -c"$CONNS" -d"$DUR" "$URL" | awk '/Requests\/sec/ {printf "%.0f", $2}')
	f=$(taskset -c 1 "$OUT/delayctl" bench --url "$URL" --rate 0 -c "$CONNS" -d "$DUR" -o json | json_rate)
	s=$(taskset -c 1 "$OUT/delayctl" bench --url "$URL" --rate 0 -c "$CONNS" -d "$DUR" -o json --client std | json_rate)
	rf=$(echo "$f / $w" | bc -l) rs=$(echo "$s / $w" | bc -l)
	WRK+=("$w") FAST+=("$f") STD+=("$s") RF+=("$rf") RS+=("$rs")
	printf '%-6s %12s %16s %16s %10.3f %10.3f' "$r" "$w" "$f" "$s" "$rf" "$rs"
	if [ -n "${VEGETA:-}" ]; then
		v=$(echo "GET $URL" | taskset -c 1 "$VEGETA" attack -rate=0 -workers="$CONNS" -max-workers="$CONNS" -duration="$DUR" |
			taskset -c 1 "$VEGETA" report -type=json | json_rate)
		rv=$(echo "$v / $w" | bc -l)
		RV+=("$rv")
		printf ' %12s %11.3f' "$v" "$rv"
	fi
	echo
done
mw=$(median "${WRK[@]}") mf=$(median "${FAST[@]}") ms=$(median "${STD[@]}")
printf '%-6s %12s %16s %16s %10.3f %10.3f   (ratio of medians)\n' median "$mw" "$mf" "$ms" "$(echo "$mf / $mw" | bc -l)" "$(echo "$ms / $mw" | bc -l)"
mrf=$(median "${RF[@]}") mrs=$(median "${RS[@]}")
printf '%-6s %12s %16s %16s %10.3f %10.3f   (median of per-round ratios)\n' paired "" "" "" "$mrf" "$mrs"
[ -n "${VEGETA:-}" ] && printf 'vegeta CLI: median of per-round ratios to wrk %.3f\n' "$(median "${RV[@]}")"
if (( $(echo "$mrf >= 0.7" | bc -l) )); then echo "generator efficiency: PASS (fast/wrk $(printf %.3f "$mrf") >= 0.7)"; else echo "generator efficiency: FAIL (fast/wrk $(printf %.3f "$mrf") < 0.7)"; fi

[ -n "${SKIP_MEMORY:-}" ] && exit 0

# Long enough at the median rate to pass MIN_REQUESTS with a 30 % margin.
secs=$(python3 -c "import math; print(math.ceil(1.3 * $MIN_REQUESTS / max($mf, 1)))")
echo
echo "memory: attack for ${secs}s (>= ${MIN_REQUESTS} requests) streaming results to $OUT/run.bin"
taskset -c 1 /usr/bin/time -v "$OUT/delayctl" bench --url "$URL" --rate 0 -c "$CONNS" -d "${secs}s" \
	--results "$OUT/run.bin" -o json >"$OUT/attack.json" 2>"$OUT/attack.time"
n=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["requests"])' "$OUT/attack.json")
rss=$(awk -F: '/Maximum resident set size/ {gsub(/ /,"",$2); print $2}' "$OUT/attack.time")
printf 'attack: %s requests, results file %s MiB, peak RSS %.1f MiB\n' "$n" "$(( $(stat -c %s "$OUT/run.bin") >> 20 ))" "$(echo "$rss / 1024" | bc -l)"
[ "$n" -ge "$MIN_REQUESTS" ] || echo "perf-bench: warning: only $n requests, fewer than $MIN_REQUESTS" >&2

/usr/bin/time -v "$OUT/delayctl" bench report "$OUT/run.bin" >"$OUT/report.txt" 2>"$OUT/report.time"
rss=$(awk -F: '/Maximum resident set size/ {gsub(/ /,"",$2); print $2}' "$OUT/report.time")
wall=$(awk '/Elapsed \(wall clock\)/ {print $NF}' "$OUT/report.time")
printf 'report: %s requests re-read in %s, peak RSS %.1f MiB\n' "$(awk '/requests in/ {print $1}' "$OUT/report.txt")" "$wall" "$(echo "$rss / 1024" | bc -l)"
echo "outputs in $OUT"
