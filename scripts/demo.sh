#!/usr/bin/env bash
# make demo: the whole loop on the real data, all on this machine.
#   train -> serve (background, free port) -> bench at a constant rate with real rows
#   -> bench report -> slo verdicts (client side, exact; server side, from /metrics)
# Everything lands in $OUT. Any failing step stops the demo with its exit code, and the
# server is stopped whatever happens.
set -euo pipefail

BIN=${BIN:-bin/delayctl}
DATA=${DATA:-data/flightdata.csv}
OUT=${OUT:-out}
RATE=${RATE:-200/s}
DURATION=${DURATION:-20s}
SLO=${SLO:-configs/slo.yaml}
TRAIN_CONFIG=${TRAIN_CONFIG:-configs/train.yaml}

mkdir -p "$OUT"
server_pid=""
cleanup() {
	status=$?
	if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
		kill -TERM "$server_pid" 2>/dev/null || true
		wait "$server_pid" 2>/dev/null || true
	fi
	[ -n "${scrape_pid:-}" ] && kill "$scrape_pid" 2>/dev/null || true
	if [ "$status" -ne 0 ]; then
		echo >&2
		echo "demo: FAILED (exit $status); server log: $OUT/serve.log" >&2
	fi
	exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

step() { printf '\n=== %s\n' "$*"; }

step "1/5 train: $DATA -> $OUT/model.json"
"$BIN" train --data "$DATA" --config "$TRAIN_CONFIG" --out "$OUT/model.json" --cv 5 \
	--metrics-out "$OUT/metrics.json" --plots "$OUT/plots" 2>"$OUT/train.log"

step "2/5 serve: $OUT/model.json on a free local port"
: >"$OUT/serve.log" # exists before the background server opens it, for the loop below
"$BIN" serve --model "$OUT/model.json" --addr 127.0.0.1:0 --log-format text 2>"$OUT/serve.log" &
server_pid=$!
addr=""
for _ in $(seq 1 100); do
	addr=$(sed -n 's/.*msg=serving addr=\([^ ]*\).*/\1/p' "$OUT/serve.log" | head -1)
	[ -n "$addr" ] && "$BIN" probe --url "http://$addr/readyz" --timeout 1s >/dev/null 2>&1 && break
	kill -0 "$server_pid" 2>/dev/null || { cat "$OUT/serve.log" >&2; exit 1; }
	sleep 0.1
done
[ -n "$addr" ] || { echo "demo: the server did not become ready" >&2; exit 1; }
grep -m1 'msg=serving' "$OUT/serve.log"

step "3/5 bench: $RATE for $DURATION against http://$addr/predict, bodies from real rows"
# The server-side view of the same minutes: two scrapes of /metrics, as long apart as the run.
"$BIN" slo report --slo "$SLO" --scrape "http://$addr/metrics" --interval "$DURATION" \
	>"$OUT/slo-server.txt" 2>&1 &
scrape_pid=$!
"$BIN" bench --url "http://$addr/predict" --from-data "$DATA" --model "$OUT/model.json" \
	--body-form mixed --rate "$RATE" --duration "$DURATION" \
	--results "$OUT/run.bin" --plot "$OUT/plot.html" --png "$OUT/bench" | tee "$OUT/bench.txt"

step "4/5 slo: the run's requests against $SLO (exact, from $OUT/run.bin)"
slo_status=0
"$BIN" slo report --slo "$SLO" --results "$OUT/run.bin" | tee "$OUT/slo.txt" || slo_status=$?
"$BIN" slo report --slo "$SLO" --results "$OUT/run.bin" --output json >"$OUT/slo.json" || true

step "5/5 slo: the server's own metrics over the same interval (memory included)"
server_status=0
wait "$scrape_pid" || server_status=$?
scrape_pid=""
cat "$OUT/slo-server.txt"

kill -TERM "$server_pid"
wait "$server_pid"
server_pid=""
echo
tail -n 2 "$OUT/serve.log"

step "done: outputs in $OUT/"
ls -1 "$OUT"
if [ "$slo_status" -ne 0 ] || [ "$server_status" -ne 0 ]; then
	echo "demo: an SLO objective was breached (exit $slo_status client side, $server_status server side)" >&2
	exit 1
fi
echo "demo: every SLO objective met"
