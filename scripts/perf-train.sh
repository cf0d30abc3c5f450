#!/usr/bin/env bash
# Training performance at scale (make perf-train): `delayctl train` on synthetic BTS-layout
# data of 1M and 10M rows (and 100M with PERF_TRAIN_100M=1: 14 GB of CSV in $TMPDIR), each
# under /usr/bin/time -v: wall time, CPU time, peak RSS and peak RSS per row. Then 3M rows
# side by side with the scikit-learn pipeline of scripts/perf-train-sklearn.py on the same
# file, and the coefficient check against scikit-learn on flightdata's design
# (scripts/sklearn-compare.sh), when python3-sklearn is installed.
# One run per size: the large ones take minutes. CPU time is steadier than wall time on a
# shared machine; peak RSS does not depend on load.
# Usage: scripts/perf-train.sh   (after make build; flightdata for the sklearn design check)
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${BIN:-bin/delayctl}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
sizes="1000000 10000000"
if [ "${PERF_TRAIN_100M:-0}" = 1 ]; then sizes="$sizes 100000000"; fi

# timed label command...: runs it under /usr/bin/time -v, keeps its stdout in $tmp/out,
# and sets secs, cpu and kb.
timed() {
	local label=$1; shift
	/usr/bin/time -v -o "$tmp/time" "$@" >"$tmp/out" 2>"$tmp/err" || { cat "$tmp/err"; echo "$label failed"; exit 1; }
	secs=$(awk -F': ' '/Elapsed/ {n=split($2,a,":"); s=0; for(i=1;i<=n;i++) s=s*60+a[i]; print s}' "$tmp/time")
	cpu=$(awk -F': ' '/User time|System time/ {s+=$2} END {printf "%.1f", s}' "$tmp/time")
	kb=$(awk -F': ' '/Maximum resident/ {print $2}' "$tmp/time")
}

echo "machine: $(nproc) cores, $(go version | cut -d' ' -f3), load $(cut -d' ' -f1-3 /proc/loadavg), $(date -u +%F)"
timed "flightdata" "$bin" train --data data/flightdata.csv --out "$tmp/m.json" --cv 5
echo "flightdata.csv with --cv 5: $secs s wall, $cpu s cpu, $((kb / 1024)) MiB peak; $(grep -m1 cross-validation "$tmp/out")"
printf "%-12s %9s %9s %10s %10s  %s\n" rows wall_s cpu_s peak_MiB bytes/row "fit"
for n in $sizes; do
	"$bin" data synth --rows "$n" --seed 1 --out "$tmp/synth.csv"
	timed "train $n" "$bin" train --data "$tmp/synth.csv" --out "$tmp/m.json"
	fit=$(grep -m1 '^fit:' "$tmp/out" | sed 's/^fit: //')
	printf "%-12s %9.1f %9s %10.0f %10.1f  %s\n" "$n" "$secs" "$cpu" "$((kb / 1024))" "$(awk "BEGIN{print $kb*1024/$n}")" "$fit"
	rm -f "$tmp/synth.csv"
done

if ! /usr/bin/python3 -c 'import sklearn, pandas' 2>/dev/null; then
	echo "scikit-learn comparison skipped: apt-get install -y python3-sklearn python3-pandas"
	exit 0
fi
n=3000000
"$bin" data synth --rows "$n" --seed 1 --out "$tmp/synth.csv"
# The scikit-learn pipeline fits the eight features once at a fixed threshold; so does
# delayctl with this config, for the same work. The default pipeline adds two crosses and a
# second fit to choose the threshold.
printf 'version: delayctl/v1\ncrosses: []\ntraining:\n  threshold: "0.5"\n' >"$tmp/same.yaml"
timed "delayctl 3M default" "$bin" train --data "$tmp/synth.csv" --out "$tmp/m.json"
f_secs=$secs f_cpu=$cpu f_kb=$kb
f_auc=$(awk '/^roc_auc/ {print $2}' "$tmp/out")
timed "delayctl 3M" "$bin" train --data "$tmp/synth.csv" --config "$tmp/same.yaml" --out "$tmp/m.json"
d_secs=$secs d_cpu=$cpu d_kb=$kb
d_auc=$(awk '/^roc_auc/ {print $2}' "$tmp/out")
timed "scikit-learn 3M" /usr/bin/python3 scripts/perf-train-sklearn.py "$tmp/synth.csv"
echo
echo "3,000,000 synthetic rows, end to end (read, clean, encode, split, fit, score):"
printf "  %-44s %7.1f s wall %7s s cpu %6.0f MiB peak  roc_auc %s\n" "delayctl train, default (crosses, two fits)" "$f_secs" "$f_cpu" "$((f_kb / 1024))" "$f_auc"
printf "  %-44s %7.1f s wall %7s s cpu %6.0f MiB peak  roc_auc %s\n" "delayctl train, scikit-learn's design" "$d_secs" "$d_cpu" "$((d_kb / 1024))" "$d_auc"
printf "  %-44s %7.1f s wall %7s s cpu %6.0f MiB peak  (%s)\n" "scikit-learn (pandas, OneHotEncoder, lbfgs)" "$secs" "$cpu" "$((kb / 1024))" "$(sed 's/^scikit-learn: //' "$tmp/out")"
awk -v ds="$d_secs" -v ss="$secs" -v dc="$d_cpu" -v sc="$cpu" -v dk="$d_kb" -v sk="$kb" 'BEGIN {
	printf "  delayctl (same design)/scikit-learn: wall %.2fx, cpu %.2fx, memory %.3fx (targets <= 0.5x time, <= 0.1x memory)\n", ds/ss, dc/sc, dk/sk }'
echo
./scripts/sklearn-compare.sh "$tmp/sk"
SOLVER=newton-cg ./scripts/sklearn-compare.sh "$tmp/sk-cg"
