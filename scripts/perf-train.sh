#!/usr/bin/env bash
# Training performance: flightdata.csv end to end, 1,000,000 synthetic rows (time and peak
# RSS), and the scikit-learn comparison when python3-sklearn is installed.
# Usage: scripts/perf-train.sh   (after make build and make data)
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${BIN:-bin/delayctl}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

measure() { # label, command...: best wall time of 3 and the peak RSS of that run
	local label=$1; shift
	local best="" rss=""
	for _ in 1 2 3; do
		/usr/bin/time -f "%e %M" -o "$tmp/time" "$@" >/dev/null 2>&1
		read -r secs kb <"$tmp/time"
		if [ -z "$best" ] || awk "BEGIN{exit !($secs < $best)}"; then best=$secs rss=$kb; fi
	done
	printf "%-52s %6.2f s  %6.0f MiB peak RSS\n" "$label" "$best" "$((rss / 1024))"
}

echo "machine: $(nproc) cores, $(go version | cut -d' ' -f3), $(date -u +%F)"
measure "train flightdata.csv (11,231 rows), no CV" "$bin" train --data data/flightdata.csv --out "$tmp/m.json"
measure "train flightdata.csv with --cv 5" "$bin" train --data data/flightdata.csv --out "$tmp/m.json" --cv 5
"$bin" data synth --rows 1000000 --seed 1 --out "$tmp/synth-1m.csv"
measure "train 1,000,000 synthetic rows, no CV" "$bin" train --data "$tmp/synth-1m.csv" --out "$tmp/m1m.json"
if /usr/bin/python3 -c 'import sklearn' 2>/dev/null; then
	./scripts/sklearn-compare.sh "$tmp/sk"
else
	echo "scikit-learn comparison skipped: apt-get install -y python3-sklearn"
fi
