#!/usr/bin/env bash
# make image-test: build the container image with podman and prove it works the way a cluster
# runs it. A model trained here is mounted read-only; the checks are:
#   - /readyz and /predict answer through a port published on 127.0.0.1;
#   - the server process runs as uid 65532 and the root filesystem is read-only;
#   - the image's HEALTHCHECK command succeeds inside the container;
#   - podman stop (SIGTERM) fails /readyz while /predict still answers during the drain delay,
#     then the server exits 0 within the grace period;
#   - the image size, uncompressed and gzip-compressed as a registry stores its layers.
# podman, buildah and runc come from Debian when missing; the default crun runtime fails on
# this kernel's cgroup setup, so runc is used with ulimits no higher than the host's. Every
# podman call is bounded by a timeout; the container is removed by its ID on exit.
set -euo pipefail

IMAGE=${IMAGE:-delayctl:image-test}
BIN=${BIN:-bin/delayctl}
DIR=${IMAGE_TEST_DIR:-out/image-test}
GRACE=30     # podman stop -t: seconds before SIGKILL, as terminationGracePeriodSeconds
DRAIN=2s     # DELAYCTL_SERVE_DRAIN_DELAY for the run
T=120        # upper bound in seconds for any single podman call
GOAL_COMPRESSED=$((12 * 1000 * 1000))

if ! command -v podman >/dev/null || ! command -v runc >/dev/null; then
	echo "image-test: installing podman, buildah and runc from Debian"
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq podman buildah runc >/dev/null
fi
run=(timeout "$T" podman)
# Explicit ulimits, no higher than this shell's (podman's defaults exceed them here).
nofile=$(ulimit -n) nproc=$(ulimit -u)
[ "$nofile" = unlimited ] || [ "$nofile" -gt 1024 ] && nofile=1024
[ "$nproc" = unlimited ] || [ "$nproc" -gt 1024 ] && nproc=1024
start=$SECONDS
log() { printf 'image-test %3ds  %s\n' "$((SECONDS - start))" "$*"; }
fail() { echo "image-test: FAIL: $*" >&2; exit 1; }

rm -rf "$DIR" && mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)
cid=""
cleanup() {
	if [ -n "$cid" ]; then
		"${run[@]}" rm -f -t 0 "$cid" >/dev/null 2>&1 || true
	fi
}
trap cleanup EXIT

make --no-print-directory build BIN="$BIN" >/dev/null
# The previous run's image would be left dangling by the new tag.
"${run[@]}" rmi "$IMAGE" >/dev/null 2>&1 || true
log "building $IMAGE (podman, target context: nothing is pulled)"
make --no-print-directory image ENGINE=podman IMAGE="$IMAGE" IMAGE_BUILD_FLAGS=--pull=never >"$DIR/build.log" 2>&1 || { cat "$DIR/build.log"; fail "image build"; }

"$BIN" data synth --rows 3000 --seed 1 --out "$DIR/synth.csv"
"$BIN" train --data "$DIR/synth.csv" --out "$DIR/model.json" >/dev/null 2>&1
"$BIN" bench bodies --from-data "$DIR/synth.csv" --model "$DIR/model.json" --from-data-rows 1 --out "$DIR/body.json" >/dev/null 2>&1
log "model trained on 3000 synthetic rows: $DIR/model.json"

# --read-only mounts the image's root read-only (podman still gives /tmp and /run a tmpfs);
# the default CMD serves /models/model.json on 0.0.0.0:8080.
cid=$("${run[@]}" run -d --name "delayctl-image-test-$$" --runtime runc \
	--ulimit "nofile=$nofile:$nofile" --ulimit "nproc=$nproc:$nproc" --read-only \
	-p 127.0.0.1::8080 -v "$DIR/model.json:/models/model.json:ro" \
	-e DELAYCTL_SERVE_DRAIN_DELAY="$DRAIN" "$IMAGE" 2>"$DIR/run.err") || { cat "$DIR/run.err"; fail "podman run"; }
hostport=$("${run[@]}" port "$cid" 8080/tcp)
case $hostport in 127.0.0.1:*) ;; *) fail "port 8080 published on $hostport, want 127.0.0.1 only" ;; esac
url=http://$hostport
log "container ${cid:0:12} serving on $url"

code() { curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$@" || true; }
for _ in $(seq 1 100); do
	[ "$(code "$url/readyz")" = 200 ] && break
	sleep 0.1
done
[ "$(code "$url/readyz")" = 200 ] || { "${run[@]}" logs "$cid" >&2; fail "/readyz never answered 200"; }
predict=$(curl -s --max-time 2 -H 'Content-Type: application/json' --data-binary @"$DIR/body.json" "$url/predict")
case $predict in *'"probability"'*) ;; *) fail "/predict answered: $predict" ;; esac
log "ok: /readyz 200, /predict $predict"

pid=$("${run[@]}" inspect -f '{{.State.Pid}}' "$cid")
uid=$(awk '/^Uid:/ {print $2}' "/proc/$pid/status")
[ "$uid" = 65532 ] || fail "the server runs as uid $uid, want 65532"
[ "$("${run[@]}" inspect -f '{{.HostConfig.ReadonlyRootfs}}' "$cid")" = true ] || fail "root filesystem not read-only"
if out=$("${run[@]}" exec "$cid" /delayctl data synth --rows 1 --out /written.csv 2>&1); then
	fail "writing /written.csv inside the container succeeded"
fi
case $out in *"read-only file system"*) ;; *) fail "writing to / failed for another reason: $out" ;; esac
log "ok: uid $uid; root filesystem read-only ($out)"

health=$("${run[@]}" inspect -f '{{json .Config.Healthcheck.Test}}' "$cid")
"${run[@]}" healthcheck run "$cid" 2>"$DIR/health.err" || { cat "$DIR/health.err"; fail "HEALTHCHECK $health failed"; }
log "ok: HEALTHCHECK $health exits 0"

# SIGTERM: during the drain delay /readyz answers 503 while /predict is still served.
t0=$(date +%s.%N)
"${run[@]}" stop -t "$GRACE" "$cid" >/dev/null 2>"$DIR/stop.err" &
stop_pid=$!
seen_drain=""
for _ in $(seq 1 100); do
	if [ "$(code "$url/readyz")" = 503 ]; then
		[ "$(code -H 'Content-Type: application/json' --data-binary @"$DIR/body.json" "$url/predict")" = 200 ] && seen_drain=1
		break
	fi
	sleep 0.05
done
wait "$stop_pid" || { cat "$DIR/stop.err"; fail "podman stop"; }
stop_s=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
exit_code=$("${run[@]}" inspect -f '{{.State.ExitCode}}' "$cid")
"${run[@]}" logs "$cid" >"$DIR/container.log" 2>&1
[ -n "$seen_drain" ] || fail "no moment with /readyz 503 and /predict 200 during the $DRAIN drain"
[ "$exit_code" = 0 ] || { tail -5 "$DIR/container.log"; fail "exit code $exit_code after SIGTERM"; }
grep -q 'stopped: every request finished' "$DIR/container.log" || fail "no clean shutdown in the log"
awk -v s="$stop_s" -v g="$GRACE" 'BEGIN { exit !(s < g) }' || fail "stop took ${stop_s}s, grace is ${GRACE}s"
log "ok: SIGTERM drained ($DRAIN with /readyz 503, /predict 200) and exited 0 in ${stop_s}s (grace ${GRACE}s)"

# Sizes: the image as stored locally, and its layers gzip-compressed as a registry stores them
# (podman save --compress writes each layer blob as docker push would upload it).
size=$("${run[@]}" image inspect -f '{{.Size}}' "$IMAGE")
"${run[@]}" save --format docker-dir --compress -o "$DIR/saved" "$IMAGE" >"$DIR/save.log" 2>&1
compressed=$(jq '[.layers[].size] | add' "$DIR/saved/manifest.json")
layers=$(jq '.layers | length' "$DIR/saved/manifest.json")
binary=$(stat -c %s bin/image/delayctl)
printf 'image-test: image %s: %d bytes uncompressed (binary %d), %d bytes compressed in %d layer(s)\n' \
	"$IMAGE" "$size" "$binary" "$compressed" "$layers"
[ "$compressed" -lt "$GOAL_COMPRESSED" ] || fail "compressed image $compressed bytes is over the goal of $GOAL_COMPRESSED"
log "PASS"
