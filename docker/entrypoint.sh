#!/bin/sh
# Entry point of the lean-prover-service images (targets api, lean-worker and gpu of
# docker/Dockerfile). Plain POSIX sh: it picks the command, waits for Redis where the command
# needs it, and then execs, so the program gets the container's signals (SIGTERM drains).
#
#   prover-entrypoint serve [ARGS]        wait for Redis, then `prover serve` (on 0.0.0.0)
#   prover-entrypoint worker [ARGS]       wait for Redis, then `prover worker` (--queue honoured)
#   prover-entrypoint prover CMD [ARGS]   any prover command; serve and worker wait for Redis
#   prover-entrypoint vllm-server [ARGS]  `vllm serve $PROVER_MODEL` with the PROVER_MODEL_*
#                                         settings mapped to its flags (gpu image)
#   prover-entrypoint health api|worker|vllm   one health probe (the images' HEALTHCHECK)
#   prover-entrypoint check-lean          does the Lean workspace answer? (run at image build)
#   prover-entrypoint CMD [ARGS]          anything else runs as it is (sh, python3, lake, ...)
#
# Environment, besides every PROVER_* setting (docker/.env.example):
#   WAIT_FOR_REDIS_TIMEOUT  seconds to wait for Redis before giving up (default 60; 0: no wait)
#   VLLM_PORT               port of `vllm-server` and of its health probe (default 8000)
#   VLLM_EXTRA_ARGS         more `vllm serve` flags, split on whitespace (e.g. --max-num-seqs 256)
set -eu

me=prover-entrypoint

log() { printf '%s: %s\n' "$me" "$*" >&2; }
die() { log "$*"; exit 1; }

# redis_probe ping|mask URL: one PING (exit 0 answered, 1 not reachable yet, 3 a mistake that
# waiting will not fix: bad URL, refused password, no redis package), or print URL with its
# password masked. Python (present in every image) does it so that passwords, TLS (rediss://)
# and unix sockets work exactly as they do for the service.
redis_probe() {
  python3 - "$@" <<'PY'
import sys

mode, url = sys.argv[1], sys.argv[2]
scheme, sep, rest = url.partition("://")
userinfo, at, hostpart = rest.rpartition("@")
if at and ":" in userinfo:
    userinfo = userinfo.split(":", 1)[0] + ":***"
shown = scheme + sep + userinfo + at + hostpart
if mode == "mask":
    print(shown)
    sys.exit(0)
try:
    import redis
except ImportError:
    print("the redis Python package is not installed (pip install 'lean-prover-service[server]')")
    sys.exit(3)
try:
    client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
except ValueError as exc:
    print(f"PROVER_REDIS_URL {shown!r} is not a Redis URL: {exc}")
    sys.exit(3)
try:
    client.ping()
except redis.AuthenticationError as exc:
    print(f"Redis at {shown} refused the credentials (check the password in PROVER_REDIS_URL "
          f"and REDIS_PASSWORD): {exc}")
    sys.exit(3)
except (redis.RedisError, OSError) as exc:
    print(f"{type(exc).__name__}: {exc}")
    sys.exit(1)
PY
}

# wait_for_redis URL: PING until it answers, for at most WAIT_FOR_REDIS_TIMEOUT seconds.
wait_for_redis() {
  url=$1
  limit=${WAIT_FOR_REDIS_TIMEOUT:-60}
  case $limit in
    '' | *[!0-9]*) die "WAIT_FOR_REDIS_TIMEOUT must be a whole number of seconds, got '$limit'" ;;
  esac
  [ "$limit" -gt 0 ] || return 0
  shown=$(redis_probe mask "$url")
  start=$(date +%s)
  said=0
  while :; do
    status=0
    err=$(redis_probe ping "$url") || status=$?
    if [ "$status" -eq 0 ]; then
      [ "$said" -eq 0 ] || log "Redis at $shown answers"
      return 0
    fi
    [ "$status" -ne 3 ] || die "$err"
    # whole seconds: more than `limit` of them apart means at least `limit` seconds went by
    elapsed=$(($(date +%s) - start))
    if [ "$elapsed" -gt "$limit" ]; then
      die "Redis at $shown did not answer within ${limit}s (last error: $err). Is Redis running" \
        "and reachable from here, and is PROVER_REDIS_URL right? (WAIT_FOR_REDIS_TIMEOUT sets" \
        "the wait)"
    fi
    if [ "$said" -eq 0 ]; then
      log "waiting up to ${limit}s for Redis at $shown ($err)"
      said=1
    fi
    sleep 1
  done
}

# start_prover serve|worker [ARGS]: wait for the Redis the command will use, then exec it.
start_prover() {
  sub=$1
  shift
  url=${PROVER_REDIS_URL:-redis://localhost:6379/0}
  take_next=0
  for arg in "$@"; do  # `prover worker --queue URL` overrides PROVER_REDIS_URL
    if [ "$take_next" -eq 1 ]; then url=$arg; take_next=0; continue; fi
    case $arg in
      --queue) take_next=1 ;;
      --queue=*) url=${arg#--queue=} ;;
    esac
  done
  if [ "$sub" = serve ]; then
    # In a container, 127.0.0.1 (the program's default) would be unreachable from outside.
    PROVER_SERVER_HOST=${PROVER_SERVER_HOST:-0.0.0.0}
    export PROVER_SERVER_HOST
  fi
  wait_for_redis "$url"
  exec prover "$sub" "$@"
}

# vllm_server [ARGS]: the OpenAI-compatible server that PROVER_MODEL_BACKEND=openai talks to,
# configured from the same PROVER_MODEL_* settings as the in-process backend.
vllm_server() {
  if [ -n "${PROVER_MODEL_MAX_LEN:-}" ]; then
    set -- --max-model-len "$PROVER_MODEL_MAX_LEN" "$@"
  fi
  if [ -n "${PROVER_OPENAI_API_KEY:-}" ]; then
    # vLLM reads its key from the environment: it stays off the command line (ps, inspect).
    VLLM_API_KEY=$PROVER_OPENAI_API_KEY
    export VLLM_API_KEY
  fi
  # shellcheck disable=SC2086  # VLLM_EXTRA_ARGS is a list of flags, split on purpose
  set -- serve "${PROVER_MODEL:-deepseek-ai/DeepSeek-Prover-V1.5-RL}" \
    --host 0.0.0.0 --port "${VLLM_PORT:-8000}" \
    --tensor-parallel-size "${PROVER_MODEL_TENSOR_PARALLEL:-1}" \
    --gpu-memory-utilization "${PROVER_MODEL_GPU_MEMORY:-0.9}" \
    --dtype "${PROVER_MODEL_DTYPE:-auto}" --seed "${PROVER_MODEL_SEED:-0}" \
    ${VLLM_EXTRA_ARGS:-} "$@"
  exec vllm "$@"
}

# http_ok URL: exit 0 when URL answers 200 within 5 s.
http_ok() {
  python3 - "$1" <<'PY'
import sys
import urllib.request

try:
    with urllib.request.urlopen(sys.argv[1], timeout=5) as response:
        sys.exit(0 if response.status == 200 else 1)
except Exception as exc:
    print(f"{sys.argv[1]}: {exc}", file=sys.stderr)
    sys.exit(1)
PY
}

health() {
  case ${1:-} in
    api) http_ok "http://127.0.0.1:${PROVER_SERVER_PORT:-8000}/healthz" ;;
    vllm) http_ok "http://127.0.0.1:${VLLM_PORT:-8000}/health" ;;
    worker)
      # A search worker has no port: it is healthy while the Redis it works from answers (the
      # container stops by itself when the worker process dies).
      err=$(redis_probe ping "${PROVER_REDIS_URL:-redis://localhost:6379/0}") \
        || { printf '%s\n' "$err" >&2; exit 1; } ;;
    *) die "health needs one of: api, worker, vllm (got '${1:-}')" ;;
  esac
}

# check_lean: the workspace resolves through `lake env` and the REPL answers one request, as
# the user the image runs as (a workspace it cannot read, or a REPL that needs a library the
# image lacks, fails here, at build time, not at the first proof).
check_lean() {
  ws=${PROVER_LEAN_WORKSPACE:-/opt/prover/lean_workspace}
  repl=.lake/packages/REPL/.lake/build/bin/repl
  cd "$ws" || die "PROVER_LEAN_WORKSPACE=$ws is not a directory"
  lean_path=$(lake env printenv LEAN_PATH) || die "'lake env' failed in $ws"
  [ -n "$lean_path" ] || die "'lake env' in $ws sets no LEAN_PATH"
  [ -x "$repl" ] || die "the REPL is not built: $ws/$repl is missing"
  reply=$(printf '%s\n\n' '{"cmd": "example : 1 + 1 = 2 := rfl"}' | lake env "$repl" 2>&1) || true
  case $reply in
    *'"env"'*) log "Lean workspace $ws: lake env and the REPL answer" ;;
    *) die "the REPL in $ws did not answer; it said: $reply" ;;
  esac
}

[ "$#" -gt 0 ] || set -- worker
command=$1
shift
case $command in
  serve | worker) start_prover "$command" "$@" ;;
  prover)
    case ${1:-} in
      serve | worker) sub=$1; shift; start_prover "$sub" "$@" ;;
      *) exec prover "$@" ;;
    esac ;;
  vllm-server) vllm_server "$@" ;;
  health) health "$@" ;;
  check-lean) check_lean ;;
  *) exec "$command" "$@" ;;
esac
