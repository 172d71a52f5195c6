#!/usr/bin/env bash
# Server CPU per request, one client, one uvicorn process on PostgreSQL: one-instance STOW and
# single-instance WADO (CT_small), measured from /proc. Complements bench/ab.sh, whose figures
# are throughput under eight clients.
#
#   bench/request_cpu.sh [PORT]          (run from the checkout to measure)
#
# Settings (environment): PYTHON (.venv/bin/python), BENCH_PG (postgres://postgres@127.0.0.1:5432),
# BENCH_DB (dicomsvc_request_cpu, dropped and created), BENCH_AUTH (1: authentication on against
# bench/oidc_issuer.py on PORT+1, roles file, audit file; every request sends a token).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}
PORT=${1:-18791}
PG=${BENCH_PG:-postgres://postgres@127.0.0.1:5432}
DB=${BENCH_DB:-dicomsvc_request_cpu}
DATA=$(mktemp -d)
PID=""
ISSUER=""
cleanup() {
  set +e  # a failing step (the server's exit status) must not skip the rest
  [ -n "$ISSUER" ] && kill "$ISSUER" 2>/dev/null
  [ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null
  psql "$PG/postgres" -q -c "DROP DATABASE IF EXISTS \"$DB\" WITH (FORCE)" >/dev/null 2>&1
  rm -rf "$DATA"
}
trap cleanup EXIT
export DICOM_DATA_DIR=$DATA DATABASE_URL="$PG/$DB"
psql "$PG/postgres" -q -c "DROP DATABASE IF EXISTS \"$DB\" WITH (FORCE)" >/dev/null 2>&1
psql "$PG/postgres" -q -c "CREATE DATABASE \"$DB\"" >/dev/null
"$PYTHON" manage.py migrate -v0 >/dev/null
export BENCH_AUTHORIZATION=""
if [ "${BENCH_AUTH:-0}" != 0 ]; then
  "$PYTHON" bench/oidc_issuer.py $((PORT + 1)) "$DATA" >"$DATA/issuer.log" 2>&1 &
  ISSUER=$!
  for _ in $(seq 1 120); do curl -fs "http://127.0.0.1:$((PORT + 1))/keys" >/dev/null 2>&1 && break; sleep 0.25; done
  curl -fs "http://127.0.0.1:$((PORT + 1))/keys" >/dev/null || { cat "$DATA/issuer.log"; exit 1; }
  export DICOM_AUTH_ENABLED=true DICOM_AUTH_AUTHORITY="http://127.0.0.1:$((PORT + 1))" DICOM_AUTH_AUDIENCE=dicom-bench
  export DICOM_AUTH_ROLES_FILE="$DATA/roles.json" DICOM_AUDIT_LOG="$DATA/audit.jsonl"
  BENCH_AUTHORIZATION="Bearer $(cat "$DATA/token")"
fi
MALLOC_ARENA_MAX=1 MALLOC_MMAP_THRESHOLD_=4194304 MALLOC_TRIM_THRESHOLD_=16777216 \
  "$(dirname "$PYTHON")/uvicorn" dicomsvc.asgi:application --port "$PORT" --log-level warning >"$DATA/server.log" 2>&1 &
PID=$!
for _ in $(seq 1 40); do curl -fs "http://127.0.0.1:$PORT/health/check" >/dev/null && break; sleep 0.25; done
"$PYTHON" - "$PORT" "$PID" <<'PY'
import http.client, io, os, sys

import pydicom
from pydicom.data import get_testdata_file
from pydicom.uid import generate_uid

port, pid = int(sys.argv[1]), int(sys.argv[2])


def cpu_seconds() -> float:
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
study, series = generate_uid(), generate_uid()
client = http.client.HTTPConnection("127.0.0.1", port)
AUTH = {"Authorization": os.environ["BENCH_AUTHORIZATION"]} if os.environ["BENCH_AUTHORIZATION"] else {}
STOW_TYPE = 'multipart/related; type="application/dicom"; boundary=B'


def stow() -> str:
    ds.StudyInstanceUID, ds.SeriesInstanceUID = study, series
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    body = b"--B\r\nContent-Type: application/dicom\r\n\r\n" + out.getvalue() + b"\r\n--B--"
    client.request("POST", "/v2/studies", body=body, headers={"Content-Type": STOW_TYPE, "Accept": "application/dicom+json", **AUTH})
    response = client.getresponse()
    response.read()
    assert response.status == 200, response.status
    return str(ds.SOPInstanceUID)


sops = [stow() for _ in range(50)]  # warm-up
n = 600
start = cpu_seconds()
for _ in range(n):
    stow()
stow_ms = (cpu_seconds() - start) / n * 1000
start = cpu_seconds()
for i in range(2 * n):
    path = f"/v2/studies/{study}/series/{series}/instances/{sops[i % len(sops)]}"
    client.request("GET", path, headers={"Accept": "application/dicom; transfer-syntax=*", **AUTH})
    response = client.getresponse()
    response.read()
    assert response.status == 200, response.status
wado_ms = (cpu_seconds() - start) / (2 * n) * 1000
print(f"server CPU per request{' (auth on)' if AUTH else ''}: STOW (1 instance) {stow_ms:.2f} ms, WADO instance {wado_ms:.2f} ms")
PY
