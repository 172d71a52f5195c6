#!/usr/bin/env bash
# Start our server (gunicorn + uvicorn workers, PostgreSQL, Redis) and Orthanc side by side on
# loopback, run bench/stow_wado_bench.py against both on the same data, stop everything.
#
#   bench/run_bench.sh [extra stow_wado_bench.py options, e.g. --big-mb 0]
#
# Settings (environment):
#   PYTHON            interpreter with the project installed   (.venv/bin/python)
#   BENCH_PORT        our port; Orthanc gets BENCH_PORT+1      (18700)
#   BENCH_WORKERS     gunicorn workers                          (2; see docs/benchmarks.md)
#   BENCH_DB          PostgreSQL database, dropped and created  (dicomsvc_bench)
#   BENCH_PG          PostgreSQL server URL without database    (postgres://postgres@127.0.0.1:5432)
#   BENCH_REDIS       Celery broker                             (redis://127.0.0.1:6379/7)
#   BENCH_TIMEOUT     hard limit for the whole run, seconds     (1800)
#   ORTHANC_SH        peer starter                              (../shared/peers/orthanc.sh)
#   BENCH_ORTHANC     0: measure only our server (A/B runs)     (1)
#   BENCH_AUTH        1: authentication on against a local issuer on BENCH_PORT+2 (bench/oidc_issuer.py),
#                     with a roles file and the audit log in a file; every request sends a token (0)
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}
PORT=${BENCH_PORT:-18700}
ORTHANC_PORT=$((PORT + 1))
WORKERS=${BENCH_WORKERS:-2}
DB=${BENCH_DB:-dicomsvc_bench}
PG=${BENCH_PG:-postgres://postgres@127.0.0.1:5432}
TIMEOUT=${BENCH_TIMEOUT:-1800}
ORTHANC_SH=${ORTHANC_SH:-../shared/peers/orthanc.sh}
BIN=$(dirname "$PYTHON")

WORK=$(mktemp -d /tmp/dicomsvc-bench.XXXXXX)
GUNICORN_PID=""
ISSUER_PID=""
cleanup() {
  set +e
  [ -n "$ISSUER_PID" ] && kill "$ISSUER_PID" 2>/dev/null
  if [ -n "$GUNICORN_PID" ] && kill -0 "$GUNICORN_PID" 2>/dev/null; then
    kill -TERM "$GUNICORN_PID"
    for _ in $(seq 1 40); do kill -0 "$GUNICORN_PID" 2>/dev/null || break; sleep 0.25; done
    kill -KILL "$GUNICORN_PID" 2>/dev/null
  fi
  [ -d "$WORK/orthanc" ] && bash "$ORTHANC_SH" stop "$WORK/orthanc"
  psql "$PG/postgres" -q -c "DROP DATABASE IF EXISTS \"$DB\" WITH (FORCE)" >/dev/null 2>&1
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

export DATABASE_URL="$PG/$DB"
export DICOM_DATA_DIR="$WORK/ours"
export CELERY_BROKER_URL=${BENCH_REDIS:-redis://127.0.0.1:6379/7}
export DICOM_PUBLIC_BASE_URL="http://127.0.0.1:$PORT"
export DJANGO_LOG_LEVEL=WARNING
mkdir -p "$DICOM_DATA_DIR"

echo "== machine: $(nproc) cores; $(uptime)"
psql "$PG/postgres" -q -c "DROP DATABASE IF EXISTS \"$DB\" WITH (FORCE)" >/dev/null
psql "$PG/postgres" -q -c "CREATE DATABASE \"$DB\"" >/dev/null
"$PYTHON" manage.py migrate --noinput >/dev/null

AUTH=()
if [ "${BENCH_AUTH:-0}" != 0 ]; then
  ISSUER_PORT=$((PORT + 2))
  "$PYTHON" bench/oidc_issuer.py "$ISSUER_PORT" "$WORK" >"$WORK/issuer.log" 2>&1 &
  ISSUER_PID=$!
  for _ in $(seq 1 120); do curl -fs "http://127.0.0.1:$ISSUER_PORT/keys" >/dev/null 2>&1 && break; sleep 0.25; done
  curl -fs "http://127.0.0.1:$ISSUER_PORT/keys" >/dev/null || { cat "$WORK/issuer.log"; exit 1; }
  export DICOM_AUTH_ENABLED=true DICOM_AUTH_AUTHORITY="http://127.0.0.1:$ISSUER_PORT" DICOM_AUTH_AUDIENCE=dicom-bench
  export DICOM_AUTH_ROLES_FILE="$WORK/roles.json" DICOM_AUDIT_LOG="$WORK/audit.jsonl"
  AUTH=(--ours-header "Authorization: Bearer $(cat "$WORK/token")")
  echo "== auth on: issuer http://127.0.0.1:$ISSUER_PORT, audit log $DICOM_AUDIT_LOG"
fi

# No Celery worker: STOW and WADO enqueue nothing, so one would only sit idle.
# glibc malloc as `make run` sets it (Makefile), for the server only, not for the bench client.
MALLOC_ARENA_MAX=${MALLOC_ARENA_MAX:-1} MALLOC_MMAP_THRESHOLD_=${MALLOC_MMAP_THRESHOLD_:-4194304} \
MALLOC_TRIM_THRESHOLD_=${MALLOC_TRIM_THRESHOLD_:-16777216} \
"$BIN/gunicorn" dicomsvc.asgi:application -k uvicorn.workers.UvicornWorker -w "$WORKERS" \
  -b "127.0.0.1:$PORT" --timeout 600 --graceful-timeout 10 --log-level warning \
  >"$WORK/gunicorn.log" 2>&1 &
GUNICORN_PID=$!
for _ in $(seq 1 60); do
  curl -fs "http://127.0.0.1:$PORT/health/check" >/dev/null 2>&1 && break
  kill -0 "$GUNICORN_PID" 2>/dev/null || { cat "$WORK/gunicorn.log"; exit 1; }
  sleep 0.5
done
curl -fs "http://127.0.0.1:$PORT/health/check" >/dev/null
echo "== ours: http://127.0.0.1:$PORT/v2 (gunicorn pid $GUNICORN_PID, $WORKERS uvicorn workers, PostgreSQL $DB)"

PEER=()
if [ "${BENCH_ORTHANC:-1}" != 0 ]; then
  ORTHANC_ROOT=$(bash "$ORTHANC_SH" start "$ORTHANC_PORT" "$WORK/orthanc")
  ORTHANC_PID=$(cat "$WORK/orthanc/orthanc.pid")
  echo "== orthanc: $ORTHANC_ROOT (pid $ORTHANC_PID, $(Orthanc --version 2>/dev/null | head -1))"
  PEER=(--orthanc "$ORTHANC_ROOT" --orthanc-pid "$ORTHANC_PID")
fi

status=0
timeout --signal=TERM --kill-after=30 "$TIMEOUT" "$PYTHON" bench/stow_wado_bench.py \
  --ours "http://127.0.0.1:$PORT/v2" --ours-pid "$GUNICORN_PID" \
  "${PEER[@]}" "${AUTH[@]}" --workdir "$WORK" "$@" || status=$?
[ -n "$ISSUER_PID" ] && echo "== audit log: $(wc -l <"$DICOM_AUDIT_LOG") lines"
if grep -qiE "error|traceback" "$WORK/gunicorn.log"; then
  echo "== server log (errors):"; grep -iE -A3 "error|traceback" "$WORK/gunicorn.log" | tail -40
fi
echo "== machine at end: $(uptime)"
exit $status
