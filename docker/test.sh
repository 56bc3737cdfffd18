#!/usr/bin/env bash
# `make docker-test`: builds the CPU image here and checks it as an operator would use it:
# non-root, JSON logs, the model fetched at first start into the volume, HEALTHCHECK healthy,
# a chat completion, a refinement stream, /metrics scraped by a real Prometheus (Debian's) and
# one of our series queried back from it, and `docker stop` draining a live stream and exiting 0.
# The compose file and Prometheus config are validated too. Prints a summary table at the end.
#   PORT             host port for the container (default 18080; it runs with --network host)
#   RUST_IMAGE, RUNTIME_IMAGE   base images (default: local ones made by docker/base-images.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
PORT=${PORT:-18080}
PROM_PORT=${PROM_PORT:-19090}
IMAGE=${IMAGE:-ptr-server:test}
NAME=ptr-docker-test-$$
VOLUME=ptr-docker-test-data-$$
WORK=$(mktemp -d)
declare -a SUMMARY=()
say() { printf '\n== %s\n' "$*"; }
ok() { SUMMARY+=("ok    $*"); echo "ok: $*"; }
fail() { echo "FAILED: $*" >&2; docker logs --tail 40 "$NAME" 2>&1 | tail -40 >&2 || true; exit 1; }
cleanup() {
  docker rm -f "$NAME" >/dev/null 2>&1 || true
  docker volume rm -f "$VOLUME" >/dev/null 2>&1 || true
  [ -n "${PROM_PID:-}" ] && kill "$PROM_PID" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

# --- tools: Docker's engine, debootstrap, Prometheus (Debian packages) -------------------------
need=()
command -v dockerd >/dev/null || need+=(docker.io)
command -v debootstrap >/dev/null || need+=(debootstrap)
command -v prometheus >/dev/null || need+=(prometheus)
command -v docker-compose >/dev/null || need+=(docker-compose)
if [ ${#need[@]} -gt 0 ]; then
  say "installing ${need[*]}"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
if ! docker info >/dev/null 2>&1; then
  say "starting dockerd (vfs storage, host networking only)"
  nohup dockerd --storage-driver=vfs --iptables=false --bridge=none >/tmp/ptr-dockerd.log 2>&1 &
  for _ in $(seq 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
  docker info >/dev/null 2>&1 || { tail /tmp/ptr-dockerd.log >&2; fail "dockerd did not start"; }
fi

# --- static checks of the compose file and the Prometheus config ------------------------------
say "validating docker/compose.yaml and docker/prometheus.yml"
docker-compose -f docker/compose.yaml config -q && ok "compose.yaml valid (docker-compose config)"
promtool check config docker/prometheus.yml >/dev/null && ok "prometheus.yml valid (promtool)"

# --- build -------------------------------------------------------------------------------------
if [ -z "${RUST_IMAGE:-}" ]; then
  bash docker/base-images.sh >/dev/null
  RUST_IMAGE=ptr-local/rust:1.95-bookworm RUNTIME_IMAGE=ptr-local/debian:bookworm-slim
fi
say "building $IMAGE on $RUST_IMAGE / $RUNTIME_IMAGE"
t0=$(date +%s)
docker build --network host -q -f docker/Dockerfile -t "$IMAGE" \
  --build-arg RUST_IMAGE="$RUST_IMAGE" --build-arg RUNTIME_IMAGE="$RUNTIME_IMAGE" . >/dev/null
size=$(docker image inspect -f '{{.Size}}' "$IMAGE")
ok "image built in $(( $(date +%s) - t0 )) s, $(( size / 1000000 )) MB"

# --- run: first start fetches the default model into the volume -------------------------------
say "starting the container (the first start fetches the model)"
t0=$(date +%s)
docker run -d --name "$NAME" --network host -e PTR_PORT="$PORT" -v "$VOLUME:/var/lib/ptr-server" \
  "$IMAGE" >/dev/null
for _ in $(seq 300); do
  curl -fsS "http://127.0.0.1:$PORT/ready" >/dev/null 2>&1 && break
  docker inspect -f '{{.State.Running}}' "$NAME" | grep -q true || fail "container exited"
  sleep 1
done
curl -fsS "http://127.0.0.1:$PORT/ready" >/dev/null || fail "/ready never answered 200"
ok "/ready 200 after $(( $(date +%s) - t0 )) s (model fetched at first start)"
[ "$(docker exec "$NAME" id -u)" = 10001 ] && ok "runs as non-root (uid 10001)" || fail "not uid 10001"
docker logs "$NAME" 2>&1 | head -1 | python3 -c 'import json,sys; json.loads(sys.stdin.readline())' \
  && ok "logs are JSON lines" || fail "logs are not JSON"
for _ in $(seq 40); do
  [ "$(docker inspect -f '{{.State.Health.Status}}' "$NAME")" = healthy ] && break; sleep 2
done
[ "$(docker inspect -f '{{.State.Health.Status}}' "$NAME")" = healthy ] && ok "HEALTHCHECK healthy" \
  || fail "HEALTHCHECK is $(docker inspect -f '{{.State.Health.Status}}' "$NAME")"

# --- the API -----------------------------------------------------------------------------------
say "chat completion"
curl -fsS "http://127.0.0.1:$PORT/v1/chat/completions" -H 'content-type: application/json' -d '{
  "messages": [{"role": "user", "content": "Name a colour."}], "temperature": 0, "max_tokens": 16
}' >"$WORK/chat.json" || fail "chat completion"
python3 - "$WORK/chat.json" <<'PY' || fail "chat completion body"
import json, sys
r = json.load(open(sys.argv[1]))
text = r["choices"][0]["message"]["content"]
assert text.strip() and r["usage"]["completion_tokens"] > 0, r
print("   answer:", repr(text))
PY
ok "chat completion"

say "refinement stream (2 rounds)"
curl -fsSN "http://127.0.0.1:$PORT/v1/refinements" -H 'content-type: application/json' -d '{
  "messages": [{"role": "user", "content": "What is 2 + 3?"}], "temperature": 0,
  "max_tokens": 24, "refinement": {"rounds": 2}
}' >"$WORK/refine.sse" || fail "refinement stream"
rounds=$(grep -c '^event: round.completed' "$WORK/refine.sse" || true)
grep -q '^event: refinement.completed' "$WORK/refine.sse" && [ "$rounds" = 2 ] \
  && ok "refinement stream: $rounds rounds, refinement.completed" || fail "refinement stream: $(head -c 600 "$WORK/refine.sse")"

# --- metrics, scraped by a real Prometheus ------------------------------------------------------
say "Prometheus scrape"
curl -fsS "http://127.0.0.1:$PORT/metrics" >"$WORK/metrics.txt" || fail "/metrics"
grep -q '^ptr_http_requests_total' "$WORK/metrics.txt" && ok "/metrics exposes ptr_* series" || fail "no ptr_http_requests_total in /metrics"
sed "s/ptr-server:8080/127.0.0.1:$PORT/; s/scrape_interval: 5s/scrape_interval: 1s/" docker/prometheus.yml >"$WORK/prom.yml"
prometheus --config.file="$WORK/prom.yml" --storage.tsdb.path="$WORK/tsdb" \
  --web.listen-address="127.0.0.1:$PROM_PORT" >"$WORK/prom.log" 2>&1 &
PROM_PID=$!
query='sum by (route,status) (ptr_http_requests_total)'
for _ in $(seq 60); do
  curl -fsS "http://127.0.0.1:$PROM_PORT/api/v1/query" --data-urlencode "query=$query" >"$WORK/q.json" 2>/dev/null \
    && python3 -c 'import json,sys; sys.exit(0 if json.load(open(sys.argv[1]))["data"]["result"] else 1)' "$WORK/q.json" && break
  sleep 1
done
python3 - "$WORK/q.json" "$query" <<'PY' || fail "Prometheus has no ptr_http_requests_total"
import json, sys
res = json.load(open(sys.argv[1]))["data"]["result"]
assert res, "empty result"
print("   Prometheus query:", sys.argv[2])
for r in res:
    print("   ", r["metric"], "=", r["value"][1])
PY
ok "Prometheus scraped the container and answered a query on ptr_http_requests_total"

# --- graceful stop: a stream in flight when `docker stop` arrives finishes ----------------------
say "docker stop during a stream"
curl -fsSN "http://127.0.0.1:$PORT/v1/chat/completions" -H 'content-type: application/json' -d '{
  "messages": [{"role": "user", "content": "Write a short poem about the sea."}],
  "temperature": 0, "max_tokens": 48, "stream": true
}' >"$WORK/stop.sse" 2>/dev/null &
CURL_PID=$!
for _ in $(seq 50); do grep -q '^data: {' "$WORK/stop.sse" 2>/dev/null && break; sleep 0.1; done
t0=$(date +%s)
docker stop -t 40 "$NAME" >/dev/null
wait "$CURL_PID" || true
code=$(docker inspect -f '{{.State.ExitCode}}' "$NAME")
tail -c 200 "$WORK/stop.sse" | grep -q 'data: \[DONE\]' || fail "the in-flight stream was cut: $(tail -c 300 "$WORK/stop.sse")"
[ "$code" = 0 ] || fail "exit code $code after docker stop"
ok "docker stop: in-flight stream finished with [DONE], exit 0 after $(( $(date +%s) - t0 )) s"

printf '\n== docker-test summary\n'
printf '%s\n' "${SUMMARY[@]}"
docker image ls --format '{{.Repository}}:{{.Tag}}  {{.Size}}' | grep -E "^(${IMAGE%%:*}|ptr-local)" || true
echo "docker-test: all ${#SUMMARY[@]} checks passed"
