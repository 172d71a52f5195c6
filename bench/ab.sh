#!/usr/bin/env bash
# A/B: `make bench` figures of two checkouts, run alternately (A B, B A, A B, ...: neither always goes
# first after the other's clean-up), our server only.
#
#   bench/ab.sh DIR_A DIR_B [ROUNDS] [stow_wado_bench.py options]
#
# Each checkout runs its own bench/run_bench.sh (so its own server start-up and settings) with
# BENCH_ORTHANC=0; every run's JSON goes to ab-results/ and a table of all runs is printed last.
# AB_ENV_A / AB_ENV_B: settings for one side only, e.g. one checkout twice with
#   AB_ENV_B="BENCH_AUTH=1" bench/ab.sh . . 3     (auth off against auth on)
set -euo pipefail
A=$(cd "$1" && pwd); B=$(cd "$2" && pwd); ROUNDS=${3:-3}; shift 3 || shift $#
PYTHON=${PYTHON:-$(pwd)/.venv/bin/python}
OUT=${AB_OUT:-$(pwd)/ab-results}
mkdir -p "$OUT"
for round in $(seq 1 "$ROUNDS"); do
  order="A B"; [ $((round % 2)) = 0 ] && order="B A"
  for side in $order; do
    dir=$A; side_env=${AB_ENV_A:-}; [ "$side" = B ] && dir=$B && side_env=${AB_ENV_B:-}
    echo "== round $round, $side: $dir ($(git -C "$dir" rev-parse --short HEAD))"
    # shellcheck disable=SC2086 (side_env is a list of NAME=value words)
    (cd "$dir" && env BENCH_ORTHANC=0 PYTHON="$PYTHON" $side_env bash bench/run_bench.sh --json "$OUT/$side-$round.json" "$@") \
      >"$OUT/$side-$round.log" 2>&1 || echo "   run failed: see $OUT/$side-$round.log"
    tail -8 "$OUT/$side-$round.log"
  done
done
"$PYTHON" - "$OUT" <<'PY'
import json, pathlib, sys
out = pathlib.Path(sys.argv[1])
runs = {}
for path in sorted(out.glob("*.json")):
    data = json.loads(path.read_text())
    values = {metric: v.get("ours") for metric, v, _ in data["rows"]}
    big = data["details"].get("big", {}).get("ours")
    if big and big.get("status") == 200:
        values["1 GB STOW MB/s"] = big["body_bytes"] / 1024 / 1024 / big["seconds"]
        values["1 GB STOW peak RSS tree MiB"] = big["peak_tree"] / 1024 / 1024
    runs[path.stem] = values
metrics = list(dict.fromkeys(m for v in runs.values() for m in v))
print(f"{'metric':<56}" + "".join(f"{name:>9}" for name in runs))
for metric in metrics:
    print(f"{metric:<56}" + "".join(f"{(runs[n].get(metric) or 0):>9.1f}" for n in runs))
PY
