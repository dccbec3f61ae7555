#!/usr/bin/env bash
# End-to-end check of docker-compose.yml on this host (needs docker and compose; not part of `make test`):
# build the image, start redis, the API and LIQRISK_SMOKE_WORKERS job workers (one pool process each), wait for
# /healthz and /readyz (broker and a live worker), one liquidation price, a sweep of 24 combinations on the synthetic
# dataset through POST /v1/sweeps (LIQRISK_SWEEP_CHUNK=3: the leverage values are cut into runs of at most 3 for each
# of the 6 other combinations, so 12 chunk tasks) polled at /v1/jobs/{id} until it succeeds, then check in the worker
# logs that the 12 chunks ran once each and every worker ran some, that every worker container is healthy (its
# compose health check pings its Celery node), and `down -v`.
#
# Usage: scripts/compose-smoke.sh [-f extra-override.yml ...]
#   e.g. LIQRISK_BASE_IMAGE=liqrisk-local/debian:bookworm LIQRISK_REDIS_IMAGE=liqrisk-local/redis:7 \
#        scripts/compose-smoke.sh -f /tmp/cpu-limits.yml
# env: LIQRISK_SMOKE_WORKERS (2), LIQRISK_PORT (host port, 8000), LIQRISK_SMOKE_BUILD (1: build before starting),
#      LIQRISK_SMOKE_KEEP (1: leave the stack running), LIQRISK_SMOKE_PROJECT (compose project, liqrisk-smoke),
#      and docker-compose.yml's own (LIQRISK_BASE_IMAGE, LIQRISK_REDIS_IMAGE, LIQRISK_IMAGE, LIQRISK_DATA_HOST_DIR).
set -euo pipefail
cd "$(dirname "$0")/.."

workers="${LIQRISK_SMOKE_WORKERS:-2}"
port="${LIQRISK_PORT:-8000}"
export LIQRISK_PORT="$port"
base="http://127.0.0.1:$port"
if docker compose version >/dev/null 2>&1; then
    compose=(docker compose)
elif command -v docker-compose >/dev/null; then
    compose=(docker-compose)
else
    echo "compose-smoke: neither 'docker compose' nor 'docker-compose' is installed" >&2
    exit 2
fi

tmp=$(mktemp -d)
# small chunks so that every worker gets some of one small sweep; one pool process per worker container
cat >"$tmp/smoke.yml" <<'EOF'
services:
  api:
    environment:
      LIQRISK_SWEEP_CHUNK: "3"
  worker:
    command: ["liqrisk", "worker", "--concurrency", "1"]
EOF
files=(-f docker-compose.yml "$@" -f "$tmp/smoke.yml")
dc=("${compose[@]}" -p "${LIQRISK_SMOKE_PROJECT:-liqrisk-smoke}" "${files[@]}")

finish() {
    status=$?
    if [ "$status" -ne 0 ]; then
        echo "compose-smoke: FAILED; last log lines:" >&2
        "${dc[@]}" logs --tail=40 >&2 || true
    fi
    if [ "${LIQRISK_SMOKE_KEEP:-0}" != 1 ]; then
        "${dc[@]}" down -v >&2 || true
    fi
    rm -rf "$tmp"
    exit "$status"
}
trap finish EXIT

step() { printf '\n== %s (%s)\n' "$*" "$(date -u +%T)" >&2; }
# wait_for URL SECONDS: until URL answers 200
wait_for() {
    local deadline=$((SECONDS + $2))
    until curl -fsS -o /dev/null "$1" 2>/dev/null; do
        if [ "$SECONDS" -ge "$deadline" ]; then
            echo "compose-smoke: $1 not ready after $2 s" >&2
            curl -sS "$1" >&2 || true
            return 1
        fi
        sleep 1
    done
}
json() { python3 -c "import json, sys; print(json.load(sys.stdin)$1)"; }

if [ "${LIQRISK_SMOKE_BUILD:-1}" = 1 ]; then
    step "build"
    start=$SECONDS
    "${dc[@]}" build api
    echo "build: $((SECONDS - start)) s" >&2
fi

step "up: redis, api, $workers workers"
start=$SECONDS
"${dc[@]}" up -d --no-build --scale "worker=$workers"
wait_for "$base/healthz" 180
echo "healthz after $((SECONDS - start)) s: $(curl -fsS "$base/healthz")" >&2
wait_for "$base/readyz" 300
echo "readyz after $((SECONDS - start)) s: $(curl -fsS "$base/readyz")" >&2

step "one liquidation price"
curl -fsS "$base/v1/liquidation-price" -H 'Content-Type: application/json' \
    -d '{"exchange":"binance","symbol":"BTCUSDT","side":"long","entry_price":100000,"quantity":0.5,"leverage":20}' >&2
echo >&2

step "a 24-combination sweep on the synthetic dataset"
headers="$tmp/headers"
job=$(curl -fsS -D "$headers" "$base/v1/sweeps" -H 'Content-Type: application/json' \
    -d '{"dataset":{"name":"synthetic","bars":8760},
         "grid":{"breakout_window":[24,48,96],"surge_mult":[2,3],"leverage":[2,3,5,10]},"split":0.7,"top":5}')
grep -i '^location:' "$headers" >&2
id=$(json '["id"]' <<<"$job")
start=$SECONDS
while :; do
    job=$(curl -fsS "$base/v1/jobs/$id")
    status=$(json '["status"]' <<<"$job")
    echo "job $id: $status, progress $(json '.get("progress")' <<<"$job")" >&2
    case "$status" in
        succeeded) break ;;
        failed | cancelled)
            echo "$job" >&2
            exit 1
            ;;
    esac
    if [ $((SECONDS - start)) -ge 300 ]; then
        echo "compose-smoke: sweep not done after 300 s" >&2
        exit 1
    fi
    sleep 2
done
echo "sweep done in $((SECONDS - start)) s; best: $(json '["result"]["best"]' <<<"$job")" >&2

step "chunks per worker"
ok=1
total=0
for container in $("${dc[@]}" ps -q worker); do
    name=$(docker inspect -f '{{.Name}}' "$container")
    chunks=$(docker logs "$container" 2>&1 | grep -c 'liqrisk.sweep_chunk\[.*\] succeeded' || true)
    echo "$name: $chunks chunk tasks succeeded" >&2
    [ "$chunks" -gt 0 ] || ok=0
    total=$((total + chunks))
done
if [ "$ok" != 1 ] || [ "$total" != 12 ]; then
    echo "compose-smoke: expected the 12 chunks spread over all $workers workers, got $total" >&2
    exit 1
fi

step "worker health"
for container in $("${dc[@]}" ps -q worker); do
    deadline=$((SECONDS + 150))
    until [ "$(docker inspect -f '{{.State.Health.Status}}' "$container")" = healthy ]; do
        if [ "$SECONDS" -ge "$deadline" ]; then
            docker inspect -f '{{json .State.Health}}' "$container" >&2
            exit 1
        fi
        sleep 2
    done
    echo "$(docker inspect -f '{{.Name}}' "$container"): healthy" >&2
done
step "compose-smoke: OK"
