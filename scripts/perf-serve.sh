#!/usr/bin/env bash
# perf-serve.sh: how fast is `delayctl serve`, measured against a minimal net/http handler in the
# same run, on loopback (issue 3's protocol):
#
# 1. Throughput. Every server is pinned to CPU 0 (taskset -c 0), wrk to CPU 1 (taskset -c 1):
#    50 connections, 10 s, one single-vector POST /predict body (a wrk Lua script), --latency.
#    Servers: (a) the minimal handler (scripts/perf-serve: reads the body, answers fixed JSON,
#    the same bytes delayctl answers), (b) delayctl serve, (c) delayctl serve with --auth-keys
#    and a Bearer key, (d) the minimal handler with delayctl's default timeouts set the
#    http.Server way (header, read, write, idle): what serve's connection guard saves. Runs
#    alternate for ROUNDS rounds so noise hits all alike; medians.
#    Targets: serve/minimal >= 0.8; auth costs a few percent at most.
# 2. Latency at half the maximum rate: `delayctl bench` (open model: requests leave on schedule,
#    so queueing shows as latency) at half of (b)'s median req/s, 50 connections, 10 s, pinned
#    to CPU 1, HALF_RUNS times each for serve and the minimal handler, with the CPU time the
#    hypervisor stole during each run. Target: p99 < 5 ms, the median of the serve runs with
#    steal under STEAL_MAX %.
# 3. The multiple over the seeds' 151-1,132 req/s (Flask and cloud functions).
#
# The machine is shared: before each run the script waits (up to QUIET_WAIT seconds) for a
# second in which the CPUs are less than 15% busy, and it also reports each server's CPU time
# per request (from /proc/PID/stat), which other load on the machine disturbs far less than
# req/s: its ratio is the throughput ratio an uncontended core would give.
#
# Usage: scripts/perf-serve.sh              (defaults: DUR=10s CONNS=50 ROUNDS=5 HALF_RUNS=5 STEAL_MAX=1 DATA=data/flightdata.csv QUIET_WAIT=120)
#        MODEL=out/model.json ROUNDS=1 scripts/perf-serve.sh
#        ONLY=latency HALF_RATE=20000 scripts/perf-serve.sh   (the latency runs alone, at a given rate)
#        ONLY=pair BASE=/tmp/delayctl-old scripts/perf-serve.sh (paired concurrent rounds of this tree's
#            serve against serve built elsewhere, e.g. from another commit: CPU per request, ROUNDS rounds)
# Exit status 1 when a target is missed.
set -euo pipefail
cd "$(dirname "$0")/.."

OUT=${OUT:-$(mktemp -d /tmp/perf-serve.XXXXXX)}
DUR=${DUR:-10s}
CONNS=${CONNS:-50}
ROUNDS=${ROUNDS:-5}
DATA=${DATA:-data/flightdata.csv}
MODEL=${MODEL:-}
P_MIN=${P_MIN:-18181}
P_SERVE=${P_SERVE:-18182}
P_AUTH=${P_AUTH:-18183}
P_MINT=${P_MINT:-18184}
QUIET_WAIT=${QUIET_WAIT:-120}

for tool in wrk taskset curl python3; do
	command -v "$tool" >/dev/null || { echo "perf-serve: $tool is required (apt-get install -y wrk util-linux curl python3)" >&2; exit 2; }
done
[ "$(nproc)" -ge 2 ] || { echo "perf-serve: needs 2 CPUs (servers on CPU 0, load on CPU 1)" >&2; exit 2; }
[ -f "$DATA" ] || { echo "perf-serve: $DATA is missing (scripts/fetch-data.sh puts it there)" >&2; exit 2; }

go build -o "$OUT/delayctl" ./cmd/delayctl
go build -o "$OUT/perf-serve" ./scripts/perf-serve
if [ -z "$MODEL" ]; then
	MODEL=$OUT/model.json
	"$OUT/delayctl" train --data "$DATA" --out "$MODEL" >/dev/null
fi
"$OUT/perf-serve" body --model "$MODEL" --data "$DATA" >"$OUT/body.json"
KEY=$("$OUT/delayctl" keys new --name perf --append "$OUT/keys.txt" 2>/dev/null)

lua() { # lua FILE [header-line]
	{
		echo 'wrk.method = "POST"'
		echo 'wrk.headers["Content-Type"] = "application/json"'
		[ $# -gt 1 ] && echo "$2"
		printf 'wrk.body = [[%s]]\n' "$(tr -d '\n' <"$OUT/body.json")"
	} >"$1"
}
lua "$OUT/post.lua"
lua "$OUT/post-auth.lua" "wrk.headers[\"Authorization\"] = \"Bearer $KEY\""

PIDS=()
trap 'for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done' EXIT
wait_port() {
	for _ in $(seq 100); do
		if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
		sleep 0.05
	done
	echo "perf-serve: nothing listens on port $1 (in use? set P_MIN/P_SERVE/P_AUTH)" >&2
	exit 1
}
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
# cputicks PID -> user+system clock ticks the process has used
cputicks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# pairround PID_A PORT_A PID_B PORT_B -> "a_us b_us": one paired concurrent round. A and B run
# together on CPU 0, each loaded by its own wrk -c CONNS/2 on CPU 1 started at the same time, so
# both meet the same outside noise; each one's CPU time per request (from /proc) is what bounds
# its req/s on a core of its own.
pairround() {
	local a0 b0 a1 b1 wa na nb
	a0=$(cputicks "$1") b0=$(cputicks "$3")
	taskset -c 1 wrk -t1 -c"$((CONNS / 2))" -d"$DUR" -s "$OUT/post.lua" "http://127.0.0.1:$2/predict" >"$OUT/wrk-conc-a.txt" &
	wa=$!
	taskset -c 1 wrk -t1 -c"$((CONNS / 2))" -d"$DUR" -s "$OUT/post.lua" "http://127.0.0.1:$4/predict" >"$OUT/wrk-conc-b.txt"
	wait "$wa"
	a1=$(cputicks "$1") b1=$(cputicks "$3")
	na=$(awk '/requests in/{print $1}' "$OUT/wrk-conc-a.txt") nb=$(awk '/requests in/{print $1}' "$OUT/wrk-conc-b.txt")
	python3 -c "t=$(getconf CLK_TCK); print('%.2f %.2f' % (($a1-$a0)/t*1e6/$na, ($b1-$b0)/t*1e6/$nb))"
}
if [ "${ONLY:-}" = pair ]; then
	[ -x "${BASE:-}" ] || { echo "perf-serve: ONLY=pair needs BASE, a delayctl binary to compare with" >&2; exit 2; }
	P_BASE=${P_BASE:-18185}
	taskset -c 0 "$BASE" serve --model "$MODEL" --addr "127.0.0.1:$P_BASE" 2>"$OUT/base.log" &
	PID_BASE=$!
	PIDS+=($!)
	taskset -c 0 "$OUT/delayctl" serve --model "$MODEL" --addr "127.0.0.1:$P_SERVE" 2>"$OUT/serve.log" &
	PID_SERVE=$!
	PIDS+=($!)
	wait_port "$P_BASE"
	wait_port "$P_SERVE"
	echo "perf-serve pair: $(date -u +%FT%TZ), load average $(cut -d' ' -f1-3 /proc/loadavg); base $BASE against this tree; two wrk -c$((CONNS / 2)), $DUR, $ROUNDS rounds"
	RS=()
	for r in $(seq "$ROUNDS"); do
		# Alternate whose wrk starts first.
		if [ $((r % 2)) = 1 ]; then
			read -r cb ct <<<"$(pairround "$PID_BASE" "$P_BASE" "$PID_SERVE" "$P_SERVE")"
		else
			read -r ct cb <<<"$(pairround "$PID_SERVE" "$P_SERVE" "$PID_BASE" "$P_BASE")"
		fi
		RS+=("$(python3 -c "print('%.3f' % ($cb / $ct))")")
		echo "round $r: base $cb us/req, tree $ct us/req: tree/base throughput by CPU per request ${RS[-1]}"
	done
	echo "tree/base = $(median "${RS[@]}") (median; range $(printf '%s\n' "${RS[@]}" | sort -n | head -1)-$(printf '%s\n' "${RS[@]}" | sort -n | tail -1)); above 1: this tree needs less CPU per request"
	exit 0
fi
taskset -c 0 "$OUT/delayctl" serve --model "$MODEL" --addr "127.0.0.1:$P_SERVE" 2>"$OUT/serve.log" &
PID_SERVE=$!
PIDS+=($!)
taskset -c 0 "$OUT/delayctl" serve --model "$MODEL" --addr "127.0.0.1:$P_AUTH" --auth-keys "$OUT/keys.txt" 2>"$OUT/serve-auth.log" &
PID_AUTH=$!
PIDS+=($!)
wait_port "$P_SERVE"
wait_port "$P_AUTH"
# The minimal handler answers exactly what delayctl answers for this body.
curl -sf -H 'Content-Type: application/json' --data-binary @"$OUT/body.json" "http://127.0.0.1:$P_SERVE/predict" >"$OUT/answer.json"
taskset -c 0 "$OUT/perf-serve" minimal --addr "127.0.0.1:$P_MIN" --answer "$OUT/answer.json" 2>"$OUT/minimal.log" &
PID_MIN=$!
PIDS+=($!)
taskset -c 0 "$OUT/perf-serve" minimal --addr "127.0.0.1:$P_MINT" --answer "$OUT/answer.json" --timeouts 2>"$OUT/minimal-timeouts.log" &
PID_MINT=$!
PIDS+=($!)
wait_port "$P_MIN"
wait_port "$P_MINT"

# quiet: wait up to QUIET_WAIT s for a 1-s window with the CPUs under 15% busy; print its busy %.
quiet() {
	python3 - "$QUIET_WAIT" <<'PY'
import sys, time
def busy():
    def snap():
        f = [int(x) for x in open("/proc/stat").readline().split()[1:]]
        return sum(f), f[3] + f[4]
    t0, i0 = snap(); time.sleep(1); t1, i1 = snap()
    return 100 * (1 - (i1 - i0) / max(1, t1 - t0))
deadline = time.time() + float(sys.argv[1])
b = busy()
while b >= 15 and time.time() < deadline:
    b = busy()
print("%.0f" % b)
PY
}
# wrkrun URL LUA PID -> "req/s p99_ms non2xx cpu_us_per_request socket-errors|-"
wrkrun() {
	local t0 t1
	t0=$(cputicks "$3")
	taskset -c 1 wrk -t1 -c"$CONNS" -d"$DUR" --latency -s "$2" "$1" >"$OUT/wrk.txt"
	t1=$(cputicks "$3")
	python3 - "$OUT/wrk.txt" "$((t1 - t0))" "$(getconf CLK_TCK)" <<'PY'
import re, sys
t = open(sys.argv[1]).read()
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", t).group(1))
n = int(re.search(r"(\d+) requests in", t).group(1))
v, u = re.search(r"99%\s+([\d.]+)(us|ms|s)\b", t).groups()
p99 = float(v) * {"us": 1e-3, "ms": 1, "s": 1e3}[u]
m = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", t)
err = re.search(r"Socket errors:.*", t)
cpu_us = int(sys.argv[2]) / int(sys.argv[3]) * 1e6 / n
print("%.0f %.3f %d %.1f %s" % (rps, p99, int(m.group(1)) if m else 0, cpu_us, "socket-errors" if err else "-"))
PY
}

echo "perf-serve: $(date -u +%FT%TZ), $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg), go $(go env GOVERSION), $(wrk -v 2>&1 | head -1 | cut -d' ' -f1-2)"
echo "model: $MODEL ($(python3 -c 'import json,sys; m=json.load(open(sys.argv[1])); print(m["name"], m["version"], m["vector_length"], "features")' "$MODEL")); body $(wc -c <"$OUT/body.json") bytes; answer $(wc -c <"$OUT/answer.json") bytes"
echo "servers on CPU 0, wrk on CPU 1: -t1 -c$CONNS -d$DUR; $ROUNDS rounds; files in $OUT"
concratio=-
if [ "${ONLY:-}" != latency ]; then
	printf '%-6s %-17s %6s %10s %9s %8s %12s\n' round server busy% req/s p99_ms non2xx cpu_us/req
	MIN=() SRV=() AUTH=() MINT=() CMIN=() CSRV=() CAUTH=() CMINT=()
	RATIOS=() CRATIOS=()
	for r in $(seq "$ROUNDS"); do
		# ABBA order: odd rounds run minimal first, even rounds last, so a drift in the machine's
		# load over a round favours neither side of the serve/minimal ratio.
		order="minimal serve serve+auth minimal+timeouts"
		[ $((r % 2)) = 0 ] && order="minimal+timeouts serve+auth serve minimal"
		for s in $order; do
			busy=$(quiet)
			case $s in
			minimal) res=$(wrkrun "http://127.0.0.1:$P_MIN/predict" "$OUT/post.lua" "$PID_MIN") ;;
			serve) res=$(wrkrun "http://127.0.0.1:$P_SERVE/predict" "$OUT/post.lua" "$PID_SERVE") ;;
			serve+auth) res=$(wrkrun "http://127.0.0.1:$P_AUTH/predict" "$OUT/post-auth.lua" "$PID_AUTH") ;;
			minimal+timeouts) res=$(wrkrun "http://127.0.0.1:$P_MINT/predict" "$OUT/post.lua" "$PID_MINT") ;;
			esac
			read -r rps p99 non2xx cpu sockerr <<<"$res"
			printf '%-6s %-17s %6s %10s %9s %8s %12s %s\n' "$r" "$s" "$busy" "$rps" "$p99" "$non2xx" "$cpu" "$([ "$sockerr" = - ] || echo "$sockerr")"
			case $s in
			minimal) MIN+=("$rps") CMIN+=("$cpu") ;;
			serve) SRV+=("$rps") CSRV+=("$cpu") ;;
			serve+auth) AUTH+=("$rps") CAUTH+=("$cpu") ;;
			minimal+timeouts) MINT+=("$rps") CMINT+=("$cpu") ;;
			esac
		done
		RATIOS+=("$(python3 -c "print(${SRV[-1]} / ${MIN[-1]})")")
		CRATIOS+=("$(python3 -c "print(${CMIN[-1]} / ${CSRV[-1]})")")
	done
	mm=$(median "${MIN[@]}") ms=$(median "${SRV[@]}") ma=$(median "${AUTH[@]}") mt=$(median "${MINT[@]}")
	cm=$(median "${CMIN[@]}") cs=$(median "${CSRV[@]}") ca=$(median "${CAUTH[@]}") ct=$(median "${CMINT[@]}")
	# The verdict is the median of the per-round ratios: each pairs runs seconds apart, so a burst
	# of outside load (this machine is shared and has steal time) tends to hit both sides of it.
	ratio=$(python3 -c "print('%.3f' % $(median "${RATIOS[@]}"))")
	cratio=$(python3 -c "print('%.3f' % $(median "${CRATIOS[@]}"))")
	medratio=$(python3 -c "print('%.3f' % ($ms / $mm))")
	authcost=$(python3 -c "print('%.1f' % (100 * (1 - $ma / $ms)))")
	cauthcost=$(python3 -c "print('%.1f' % (100 * (1 - $cs / $ca)))")
	echo
	echo "median req/s: minimal $mm, serve $ms, serve+auth $ma, minimal+timeouts $mt"
	echo "median CPU us per request: minimal $cm, serve $cs, serve+auth $ca, minimal+timeouts $ct"
	echo "per-round serve/minimal req/s ratios: $(printf '%.3f ' "${RATIOS[@]}")"
	echo "serve/minimal = $ratio by req/s, median of per-round ratios; $cratio by CPU per request; $medratio as ratio of medians"
	echo "minimal+timeouts/minimal = $(python3 -c "print('%.3f' % ($mt / $mm))") by req/s, $(python3 -c "print('%.3f' % ($cm / $ct))") by CPU per request (what http.Server's own timeouts would cost; serve enforces them without)"
	echo "auth costs $authcost% of serve's req/s, $cauthcost% by CPU per request"
	echo "multiple over the seeds' 151-1,132 req/s: $(python3 -c "print('%.0fx-%.0fx' % ($ms / 1132, $ms / 151))")"

	# Paired concurrent rounds: minimal and serve run at the same time on CPU 0, each loaded by
	# its own wrk (-c CONNS/2) on CPU 1, so both meet exactly the same outside noise. Each
	# server's CPU time per request (from /proc) is what bounds its req/s on a core of its own:
	# a saturated core gives 1 / (CPU per request) requests a second. This is the verdict, since
	# back-to-back runs on this shared machine swing by a factor of two.
	CONC=()
	echo
	echo "paired concurrent rounds: minimal and serve both on CPU 0, two wrk -c$((CONNS / 2)) on CPU 1, $DUR"
	for r in $(seq "$ROUNDS"); do
		busy=$(quiet)
		read -r ca cb <<<"$(pairround "$PID_MIN" "$P_MIN" "$PID_SERVE" "$P_SERVE")"
		cr=$(python3 -c "print('%.3f' % ($ca / $cb))")
		printf 'round %s (busy %s%%): minimal %s us/req, serve %s us/req: serve/minimal %s\n' "$r" "$busy" "$ca" "$cb" "$cr"
		CONC+=("$cr")
	done
	concratio=$(python3 -c "print('%.3f' % $(median "${CONC[@]}"))")
	echo "serve/minimal = $concratio by CPU per request in paired concurrent rounds (median; target >= 0.8)"
fi

if [ -n "${HALF_RATE:-}" ]; then
	half=$HALF_RATE
elif [ "${ONLY:-}" = latency ]; then
	echo "perf-serve: ONLY=latency needs HALF_RATE (requests per second)" >&2
	exit 2
else
	half=$(python3 -c "print(int($ms / 2))")
fi
# stealticks -> the machine's stolen clock ticks so far (/proc/stat, all CPUs): time the
# hypervisor gave this VM's CPUs to someone else.
stealticks() { awk '/^cpu /{print $9; exit}' /proc/stat; }
totalticks() { awk '/^cpu /{s=0; for (i=2; i<=NF; i++) s+=$i; print s; exit}' /proc/stat; }
# halfrun PORT NAME -> "p99_ms steal_percent" on stdout, a summary line on stderr
halfrun() {
	local s0 t0 s1 t1
	s0=$(stealticks) t0=$(totalticks)
	taskset -c 1 "$OUT/delayctl" bench --url "http://127.0.0.1:$1/predict" --body "$OUT/body.json" \
		-H 'Content-Type: application/json' --rate "$half/s" -c "$CONNS" -d "$DUR" -o json >"$OUT/half-$2.json"
	s1=$(stealticks) t1=$(totalticks)
	python3 - "$OUT/half-$2.json" "$2" "$(python3 -c "print(100 * ($s1 - $s0) / max(1, $t1 - $t0))")" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
l = r["latency"]
ms = lambda ns: ns / 1e6
steal = float(sys.argv[3])
print("  %-8s achieved %.0f/s, success %.4f, steal %4.1f%%; latency p50 %.3f ms, p90 %.3f ms, p99 %.3f ms, p99.9 %.3f ms, max %.3f ms"
      % (sys.argv[2], r["rate"], r["success_ratio"], steal, ms(l["p50"]), ms(l["p90"]), ms(l["p99"]), ms(l["p99_9"]), ms(l["max"])), file=sys.stderr)
print("%.3f %.1f" % (ms(l["p99"]), steal))
PY
}
# serverp99 BEFORE AFTER -> the server's own view of a run: delayctl_http_request_duration_seconds
# for POST /predict, the difference of two scrapes; a quantile is the smallest bucket bound
# holding that share of the requests.
serverp99() {
	python3 - "$1" "$2" <<'PY'
import re, sys
def buckets(path):
    b = {}
    for line in open(path):
        m = re.match(r'delayctl_http_request_duration_seconds_bucket\{method="POST",route="/predict",le="([^"]+)"\} (\S+)', line)
        if m:
            b[float(m.group(1))] = float(m.group(2))
    return b
b0, b1 = buckets(sys.argv[1]), buckets(sys.argv[2])
d = sorted((le, b1[le] - b0.get(le, 0)) for le in b1)
total = d[-1][1]
def q(p):
    return next(le for le, c in d if c >= p * total)
print("  server-side (%d requests): p50 <= %g ms, p99 <= %g ms, p99.9 <= %g ms" % (total, q(0.5) * 1e3, q(0.99) * 1e3, q(0.999) * 1e3))
PY
}
# The hypervisor takes this VM's CPUs away for milliseconds at a time, more so under load
# (steal time in /proc/stat); a request in flight then waits, and p99 shows the machine, not the
# server. So the latency runs are repeated HALF_RUNS times, serve then the minimal handler, each
# with the steal it suffered; the verdict is the median p99 of the serve runs with steal under
# STEAL_MAX %, and no verdict when none qualifies.
HALF_RUNS=${HALF_RUNS:-5}
STEAL_MAX=${STEAL_MAX:-1}
echo
echo "latency at half serve's maximum rate: delayctl bench --rate $half/s -c $CONNS -d $DUR (CPU 1), $HALF_RUNS runs"
echo "each of serve and of the minimal handler (the latency floor of this machine and load generator)"
CLEAN=() ALLP99=() MINP99=()
for r in $(seq "$HALF_RUNS"); do
	echo "run $r (CPU busy before: $(quiet)%)"
	curl -s "http://127.0.0.1:$P_SERVE/metrics" >"$OUT/metrics-before.txt"
	read -r p99 steal <<<"$(halfrun "$P_SERVE" serve)"
	curl -s "http://127.0.0.1:$P_SERVE/metrics" >"$OUT/metrics-after.txt"
	serverp99 "$OUT/metrics-before.txt" "$OUT/metrics-after.txt"
	ALLP99+=("$p99")
	python3 -c "import sys; sys.exit(0 if $steal < $STEAL_MAX else 1)" && CLEAN+=("$p99")
	read -r mp99 _ <<<"$(halfrun "$P_MIN" minimal)"
	MINP99+=("$mp99")
done
echo "serve p99 by run: $(printf '%s ' "${ALLP99[@]}")ms; minimal: $(printf '%s ' "${MINP99[@]}")ms"
p99ms=-
if [ "${#CLEAN[@]}" -gt 0 ]; then
	p99ms=$(median "${CLEAN[@]}")
	echo "serve p99 at half rate = $p99ms ms (median of the ${#CLEAN[@]} runs with steal under $STEAL_MAX%; target < 5 ms)"
else
	echo "serve p99 at half rate: no verdict, every run had steal of $STEAL_MAX% or more"
fi
echo
echo "serve after the runs: $(curl -s "http://127.0.0.1:$P_SERVE/metrics" | grep -E '^(delayctl_shed_requests_total|process_resident_memory_bytes|delayctl_panics_total) ' | tr '\n' ' ')"
fail=0
if [ "$concratio" != - ]; then
	python3 -c "import sys; sys.exit(0 if $concratio >= 0.8 else 1)" || { echo "MISSED: serve/minimal $concratio < 0.8 (paired concurrent rounds)"; fail=1; }
fi
if [ "$p99ms" = - ]; then
	echo "NOT SHOWN: p99 at half rate, every run lost CPU to the hypervisor (steal >= $STEAL_MAX%)"; fail=1
else
	python3 -c "import sys; sys.exit(0 if $p99ms < 5 else 1)" || { echo "MISSED: p99 $p99ms ms at half rate >= 5 ms"; fail=1; }
fi
[ "$fail" = 0 ] && echo "targets met: serve/minimal $concratio (paired; - when not run) >= 0.8, p99 $p99ms ms < 5 ms at $half req/s"
exit "$fail"
