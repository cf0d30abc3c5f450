#!/usr/bin/env bash
# make e2e: a zero-downtime rollout, proved under load, on this machine.
#
# Two `delayctl serve` replicas behind nginx (Debian's nginx-light, installed when missing);
# `delayctl bench` sends a constant rate through nginx while, one after the other, replica A
# is drained and restarted with a new model version, replica B hot-reloads that version
# (POST /admin/reload), and B is drained and restarted. The run passes only when every
# request succeeded and the responses show both model versions. Everything is on 127.0.0.1
# and stops by itself.
set -euo pipefail

BIN=${BIN:-bin/delayctl}
DATA=${DATA:-data/flightdata.csv}
DIR=${E2E_DIR:-out/e2e}
RATE=${E2E_RATE:-200/s}
DURATION=${E2E_DURATION:-30s}
NGINX=${NGINX:-$(command -v nginx || echo /usr/sbin/nginx)}

if [ ! -x "$NGINX" ]; then
	echo "e2e: installing nginx-light from Debian"
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx-light >/dev/null
	NGINX=$(command -v nginx || echo /usr/sbin/nginx)
fi

rm -rf "$DIR"
mkdir -p "$DIR/nginx/logs" "$DIR/nginx/tmp"
DIR=$(cd "$DIR" && pwd)

# The real data when it can be had; otherwise synthetic rows in the same layout (a rollout
# test needs realistic requests, not this exact data set).
if [ ! -f "$DATA" ] && ! ./scripts/fetch-data.sh "$DATA" >/dev/null 2>&1; then
	DATA=$DIR/synth.csv
	echo "e2e: flight data unavailable; using synthetic rows ($DATA)"
	"$BIN" data synth --rows 20000 --seed 1 --out "$DATA"
fi
log() { printf '%s  %s\n' "$(date -u +%H:%M:%S.%3N)" "$*" | tee -a "$DIR/timeline.txt"; }

declare -A pid
bench_pid="" nginx_started=""
cleanup() {
	status=$?
	for r in "${!pid[@]}"; do kill -TERM "${pid[$r]}" 2>/dev/null || true; done
	[ -n "$bench_pid" ] && kill -INT "$bench_pid" 2>/dev/null || true
	[ -n "$nginx_started" ] && "$NGINX" -p "$DIR/nginx" -c "$DIR/nginx/nginx.conf" -s stop 2>/dev/null || true
	wait 2>/dev/null || true
	[ "$status" -ne 0 ] && echo "e2e: FAILED (exit $status); logs in $DIR" >&2
	exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() { # the first port from $1 up that nothing listens on
	local p=$1
	while (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; do p=$((p + 1)); done
	echo "$p"
}

# Two model versions: the same data and config, different seeds.
"$BIN" train --data "$DATA" --out "$DIR/model-v1.json" --seed 1 --model-version v1 >/dev/null 2>&1
"$BIN" train --data "$DATA" --out "$DIR/model-v2.json" --seed 2 --model-version v2 >/dev/null 2>&1

port_a=$(free_port 18201)
port_b=$(free_port $((port_a + 1)))
port_lb=$(free_port $((port_b + 1)))

start() { # replica, port, model version
	local r=$1 port=$2 v=$3
	cp "$DIR/model-$v.json" "$DIR/$r.json.tmp" && mv "$DIR/$r.json.tmp" "$DIR/$r.json"
	# drain-delay: after SIGTERM keep accepting (readiness false, Connection: close) while
	# the balancer learns; then stop accepting and let in-flight requests finish.
	"$BIN" serve --model "$DIR/$r.json" --addr "127.0.0.1:$port" --drain-delay 1s \
		--shutdown-timeout 10s 2>>"$DIR/$r.log" &
	pid[$r]=$!
	for _ in $(seq 1 100); do
		"$BIN" probe --url "http://127.0.0.1:$port/readyz" --timeout 1s >/dev/null 2>&1 && { log "replica $r ready on :$port with model $v (pid ${pid[$r]})"; return; }
		sleep 0.1
	done
	echo "e2e: replica $r did not become ready" >&2
	return 1
}

stop() { # replica: SIGTERM, then wait for a clean exit
	local r=$1
	log "replica $r: SIGTERM (drain)"
	kill -TERM "${pid[$r]}"
	if ! wait "${pid[$r]}"; then
		echo "e2e: replica $r exited non-zero" >&2
		return 1
	fi
	log "replica $r exited 0"
	unset "pid[$r]"
}

start a "$port_a" v1
start b "$port_b" v1

# Passive health checks only (nginx OSS): a refused or reset connection moves the request to
# the other replica. Predictions are idempotent, so POSTs may be retried (non_idempotent).
cat >"$DIR/nginx/nginx.conf" <<NGINX
worker_processes 1;
pid $DIR/nginx/nginx.pid;
error_log $DIR/nginx/logs/error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path $DIR/nginx/tmp/body;
    proxy_temp_path $DIR/nginx/tmp/proxy;
    upstream delayctl {
        server 127.0.0.1:$port_a max_fails=1 fail_timeout=2s;
        server 127.0.0.1:$port_b max_fails=1 fail_timeout=2s;
        keepalive 32;
    }
    server {
        listen 127.0.0.1:$port_lb;
        location / {
            proxy_pass http://delayctl;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_connect_timeout 1s;
            proxy_next_upstream error timeout http_502 http_503 non_idempotent;
            proxy_next_upstream_tries 2;
        }
    }
}
NGINX
"$NGINX" -p "$DIR/nginx" -c "$DIR/nginx/nginx.conf" -t 2>/dev/null
"$NGINX" -p "$DIR/nginx" -c "$DIR/nginx/nginx.conf"
nginx_started=1
for _ in $(seq 1 50); do
	"$BIN" probe --url "http://127.0.0.1:$port_lb/readyz" --timeout 1s >/dev/null 2>&1 && break
	sleep 0.1
done
log "nginx on :$port_lb balancing :$port_a and :$port_b"

log "bench: $RATE for $DURATION through nginx"
"$BIN" bench --url "http://127.0.0.1:$port_lb/predict" --from-data "$DATA" --model "$DIR/model-v1.json" \
	--body-form mixed --rate "$RATE" --duration "$DURATION" --max-body 256 \
	--results "$DIR/run.bin" >"$DIR/bench.txt" 2>"$DIR/bench.err" &
bench_pid=$!

sleep 5
log "rolling restart 1/2: replica a, v1 -> v2"
stop a
start a "$port_a" v2
sleep 5
log "hot reload: replica b, v1 -> v2 (POST /admin/reload)"
cp "$DIR/model-v2.json" "$DIR/b.json.tmp" && mv "$DIR/b.json.tmp" "$DIR/b.json"
reload=$(bash -c "exec 3<>/dev/tcp/127.0.0.1/$port_b; printf 'POST /admin/reload HTTP/1.1\r\nHost: e2e\r\nContent-Length: 0\r\nConnection: close\r\n\r\n' >&3; cat <&3" | head -1 | tr -d '\r')
log "replica b: $reload"
[[ "$reload" == *" 200 "* ]] || { echo "e2e: reload failed: $reload" >&2; exit 1; }
sleep 5
log "rolling restart 2/2: replica b (v2)"
stop b
start b "$port_b" v2

wait "$bench_pid"
bench_pid=""
log "bench done"
cat "$DIR/bench.txt"
echo
go run ./scripts/e2e-check "$DIR/run.bin" | tee "$DIR/check.txt"
