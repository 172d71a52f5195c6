"""One-instance STOW on two servers, alternating short phases on the same data (bench/ab_pair.sh).

Not a test: it prints numbers. Each round generates `--instances` CT slices (the
stow_wado_bench.py data: CT_small tiled to 512x512, fresh UIDs, 50 per study), stores them on
A and on B (which goes first alternates by round), and prints each side's inst/s and the CPU
each instance cost the server's processes, PostgreSQL's and this client, read from /proc.
Pairing by round cancels the host's drift between rounds; the ratio B/A per round is the figure.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from stow_wado_bench import _make_studies, _template, process_tree, run_phase, stow_job  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat", "rb") as fh:
                fields = fh.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime + stime
    return total / TICKS


def postgres_pids() -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/comm", "rb") as fh:
                    if fh.read().strip() in (b"postgres", b"postmaster"):
                        pids.append(int(entry))
            except OSError:
                continue
    return pids


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--a", required=True, help="A's DICOMweb root")
    parser.add_argument("--b", required=True, help="B's DICOMweb root")
    parser.add_argument("--a-pid", type=int, required=True, help="A's gunicorn master")
    parser.add_argument("--b-pid", type=int, required=True, help="B's gunicorn master")
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--instances", type=int, default=1000, help="per phase")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--workdir", default=None)
    args = parser.parse_args()
    sides = {"A": (args.a, args.a_pid), "B": (args.b, args.b_pid)}
    template = _template(512)
    root = Path(tempfile.mkdtemp(dir=args.workdir))
    try:
        warm = _make_studies(template, root, "warm", studies=1, per_study=2 * args.clients, per_request=1)
        for url, _pid in sides.values():
            run_phase("warm-up", url, [stow_job(path, 1) for path, _refs in warm], clients=args.clients,
                      deadline_s=120, timeout=600)
        rates: dict[str, list[float]] = {"A": [], "B": []}
        costs: dict[str, list[tuple[float, float, float]]] = {"A": [], "B": []}
        ratios = []
        for number in range(args.rounds):
            data = _make_studies(template, root, f"r{number}", studies=max(1, args.instances // 50), per_study=50,
                                 per_request=1)
            for side in ("A", "B") if number % 2 == 0 else ("B", "A"):
                url, pid = sides[side]
                os.sync()
                servers, postgres = process_tree(pid), postgres_pids()
                before = cpu_seconds(servers), cpu_seconds(postgres), os.times()
                result = run_phase("stow", url, [stow_job(path, 1) for path, _refs in data], clients=args.clients,
                                   deadline_s=300, timeout=600)
                after = os.times()
                stored = max(result.units, 1)
                cost = (
                    (cpu_seconds(servers) - before[0]) / stored * 1000,
                    (cpu_seconds(postgres_pids()) - before[1]) / stored * 1000,
                    (after.user + after.system - before[2].user - before[2].system) / stored * 1000,
                )
                rates[side].append(result.units / result.seconds)
                costs[side].append(cost)
                print(f"round {number} {side}: {rates[side][-1]:6.1f} inst/s; CPU ms per instance: "
                      f"server {cost[0]:.2f}, PostgreSQL {cost[1]:.2f}, client {cost[2]:.2f}; "
                      f"{len(result.errors)} errors", flush=True)
                for error in result.errors[:3]:
                    print(f"    error: {error}", flush=True)
            ratios.append(rates["B"][-1] / rates["A"][-1])
            print(f"round {number}: B/A {ratios[-1]:.3f}", flush=True)
            for path, _refs in data:
                path.unlink()
        for side in ("A", "B"):
            server, postgres, client = (statistics.median(cost[i] for cost in costs[side]) for i in range(3))
            print(f"{side}: median {statistics.median(rates[side]):.1f} inst/s (range {min(rates[side]):.1f}-"
                  f"{max(rates[side]):.1f}); CPU ms per instance: server {server:.2f}, PostgreSQL {postgres:.2f}, "
                  f"client {client:.2f}")
        print(f"B/A per round: median {statistics.median(ratios):.3f}, range {min(ratios):.3f}-{max(ratios):.3f}, "
              f"B higher in {sum(r > 1 for r in ratios)} of {len(ratios)}")
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
