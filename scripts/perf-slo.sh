#!/usr/bin/env bash
# perf-slo.sh measures `delayctl slo report` over 1,000,000 vegeta results (gob and JSON):
# wall time and peak resident memory of the whole process (/usr/bin/time -v), then the Go
# benchmark that compares the report's streaming with bare vegeta decoding in the same run.
# Targets (issue 5): under 2 s and under 200 MiB for 1,000,000 results.
# Usage: scripts/perf-slo.sh [N]   (results in docs/PERF-SLO.md)
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-1000000}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

go build -o "$tmp/delayctl" ./cmd/delayctl
for enc in gob json; do
  go run ./scripts/slo-genresults -n "$n" -encoding "$enc" -o "$tmp/results.$enc"
done
ls -l "$tmp"/results.* | awk '{print $5, $9}'

for enc in gob json; do
  for i in 1 2 3; do
    /usr/bin/time -f "$enc run $i: %e s wall, %M KiB max RSS, exit %x" \
      "$tmp/delayctl" slo report --slo configs/slo.yaml --results "$tmp/results.$enc" >/dev/null || true
  done
done
# Three files merged, the same total.
go run ./scripts/slo-genresults -n $((n / 2)) -seed 2 -o "$tmp/half1.bin"
go run ./scripts/slo-genresults -n $((n / 2)) -seed 3 -encoding json -o "$tmp/half2.json"
/usr/bin/time -f "merged gob+json: %e s wall, %M KiB max RSS, exit %x" \
  "$tmp/delayctl" slo report --slo configs/slo.yaml --results "$tmp/half1.bin" "$tmp/half2.json" >/dev/null || true

go test ./pkg/slo -run '^$' -bench BenchmarkReport -benchmem -count 3
