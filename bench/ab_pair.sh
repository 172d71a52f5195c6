#!/usr/bin/env bash
# Paired A/B of one-instance STOW: both checkouts' servers up at once (idle one waits), short
# phases alternating between them on the same generated data (bench/stow_pair.py), so that the
# host's drift between rounds, which `bench/ab.sh` sees as a third of the figure, cancels out.
#
#   bench/ab_pair.sh DIR_A DIR_B [stow_pair.py options, e.g. --rounds 8 --clients 1]
#
# Each server runs from its own checkout with the same interpreter (PYTHON), gunicorn with
# BENCH_WORKERS (2) uvicorn workers and glibc malloc set as `make run` sets it, on a database of
# its own (dropped and created: BENCH_DB_A / BENCH_DB_B under BENCH_PG), ports BENCH_PORT (18700)
# and BENCH_PORT+10. Per phase it prints inst/s and CPU per instance of the server's processes,
# of PostgreSQL and of the client, from /proc.
set -euo pipefail
A=$(cd "$1" && pwd); B=$(cd "$2" && pwd); shift 2
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-$(pwd)/.venv/bin/python}
BIN=$(dirname "$PYTHON")
PG=${BENCH_PG:-postgres://postgres@127.0.0.1:5432}
PORT=${BENCH_PORT:-18700}
WORK=$(mktemp -d /tmp/dicomsvc-abpair.XXXXXX)
PIDS=()
cleanup() {
  set +e
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null; done
  for pid in "${PIDS[@]}"; do
    for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    kill -KILL "$pid" 2>/dev/null
  done
  for db in "${BENCH_DB_A:-dicomsvc_pair_a}" "${BENCH_DB_B:-dicomsvc_pair_b}"; do
    psql "$PG/postgres" -q -c "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" >/dev/null 2>&1
  done
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

serve() {  # serve DIR PORT DB
  local dir=$1 port=$2 db=$3
  psql "$PG/postgres" -q -c "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" >/dev/null
  psql "$PG/postgres" -q -c "CREATE DATABASE \"$db\"" >/dev/null
  mkdir -p "$WORK/$db"
  (
    cd "$dir"
    export DATABASE_URL="$PG/$db" DICOM_DATA_DIR="$WORK/$db" CELERY_BROKER_URL=${BENCH_REDIS:-redis://127.0.0.1:6379/7}
    export DICOM_PUBLIC_BASE_URL="http://127.0.0.1:$port" DJANGO_LOG_LEVEL=WARNING
    "$PYTHON" manage.py migrate --noinput >/dev/null
    MALLOC_ARENA_MAX=1 MALLOC_MMAP_THRESHOLD_=4194304 MALLOC_TRIM_THRESHOLD_=16777216 \
    exec "$BIN/gunicorn" dicomsvc.asgi:application -k uvicorn.workers.UvicornWorker -w "${BENCH_WORKERS:-2}" \
      -b "127.0.0.1:$port" --timeout 600 --graceful-timeout 10 --log-level warning
  ) >"$WORK/$db.log" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 1 120); do curl -fs "http://127.0.0.1:$port/health/check" >/dev/null 2>&1 && return; sleep 0.5; done
  cat "$WORK/$db.log"; exit 1
}
serve "$A" "$PORT" "${BENCH_DB_A:-dicomsvc_pair_a}"
serve "$B" "$((PORT + 10))" "${BENCH_DB_B:-dicomsvc_pair_b}"
echo "== A: $A ($(git -C "$A" rev-parse --short HEAD)), B: $B ($(git -C "$B" rev-parse --short HEAD))"
"$PYTHON" bench/stow_pair.py --a "http://127.0.0.1:$PORT/v2" --b "http://127.0.0.1:$((PORT + 10))/v2" \
  --a-pid "${PIDS[0]}" --b-pid "${PIDS[1]}" --workdir "$WORK" "$@"
