#!/usr/bin/env bash
# Instructions per request (valgrind's callgrind: a count, the same whatever else the machine
# does), in process through Django's test client: one-instance STOW or WADO instance of CT_small.
#
#   bench/request_instructions.sh wado|stow [N]     (run from the checkout to measure; N: 100)
#
# Runs bench/request_loop.py twice, with 0 and with N requests after the same warm-up, and prints
# the difference divided by N. Settings (environment): PYTHON (.venv/bin/python); DATABASE_URL
# (PostgreSQL: only the client side is counted, psycopg included), else SQLite in a temporary
# directory. Takes about two minutes per run.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}
WHICH=$1
N=${2:-100}
count() {
  local data out
  data=$(mktemp -d); out=$(mktemp)
  DICOM_DATA_DIR=$data PYTHONHASHSEED=0 valgrind --tool=callgrind --callgrind-out-file="$out" \
    "$PYTHON" bench/request_loop.py "$WHICH" "$1" >/dev/null 2>"$out.err"
  grep -E "Collected" "$out.err" | awk '{print $NF}'
  rm -rf "$data" "$out" "$out.err"
}
base=$(count 0)
total=$(count "$N")
echo "$WHICH: $(( (total - base) / N )) instructions per request (over $N; base run $base)"
