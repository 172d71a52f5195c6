"""QIDO-RS latency on the archive bench/qido_load.py loads: p50/p95 per query, and EXPLAIN.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/dicomsvc_bench3 \\
        .venv/bin/python bench/qido_bench.py [--runs 200] [--explain bench/out/qido_explain.txt]

Each request goes through the whole Django stack in-process (URL routing, view, query
parsing, the one SQL statement, JSON rendering), with varied values drawn from the
archive. Reported per case: p50/p95 of the request and of its SQL alone, the SQL
statements per request (always 1 once the partition is cached) and mean results.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dicomsvc.settings")

import django  # noqa: E402

django.setup()

from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402

from studies.models import Series, Study  # noqa: E402

ACCEPT = "application/dicom+json"


def _samples(rng: random.Random, count: int) -> dict[str, list[tuple[str, dict[str, str]]]]:
    """(path, params) per case, drawn from the loaded archive."""
    ids = list(Study.objects.order_by("?").values_list("patient_id", "patient_name", "study_instance_uid")[:count])
    dates = list(Study.objects.exclude(study_date=None).order_by("?").values_list("study_date", flat=True)[:count])
    big = list(
        Series.objects.filter(num_instances=500).values_list("study__study_instance_uid", "series_instance_uid")
    )
    cases: dict[str, list[tuple[str, dict[str, str]]]] = {
        "studies by PatientID": [("studies", {"PatientID": pid}) for pid, _, _ in ids],
        "studies by PatientName fuzzy": [],
        "studies by StudyDate range, limit 100": [],
        "series of a study": [(f"studies/{uid}/series", {}) for _, _, uid in ids],
        "instances of a 500-instance series": [
            (f"studies/{study}/series/{series}/instances", {}) for study, series in rng.choices(big, k=count)
        ],
    }
    for _, name, _ in ids:
        family, given = (name.split("^") + [""])[:2]
        # What a user types: the start of the family name and of the given name.
        words = f"{family[: rng.randint(3, 5)]} {given[: rng.randint(1, 3)]}".strip()
        cases["studies by PatientName fuzzy"].append(("studies", {"PatientName": words, "fuzzymatching": "true"}))
    for day in dates:
        end = day.toordinal() + 30
        high = type(day).fromordinal(end)
        cases["studies by StudyDate range, limit 100"].append(
            ("studies", {"StudyDate": f"{day:%Y%m%d}-{high:%Y%m%d}", "limit": "100"})
        )
    return cases


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(share * (len(ordered) - 1))))]


class SqlTimer:
    """Wall time spent executing SQL, via a connection execute wrapper."""

    def __init__(self) -> None:
        self.elapsed = 0.0
        self.count = 0

    def __call__(self, execute: Callable, sql: str, params: object, many: bool, context: object) -> object:
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            self.elapsed += time.perf_counter() - started
            self.count += 1


def run(runs: int, explain_path: Path | None) -> None:
    rng = random.Random(7)
    client = Client()
    cases = _samples(rng, runs)
    print(f"archive: {Study.objects.count()} studies, {Series.objects.count()} series, "
          f"{Study.objects.raw('SELECT 1 AS id, count(*) FROM studies_instance')[0].count} instances")
    explain_out: list[str] = []
    header = f"{'query':40} {'p50 ms':>8} {'p95 ms':>8} {'sql p50':>8} {'sql p95':>8} {'queries':>8} {'results':>8}"
    print(header)
    for name, requests in cases.items():
        for path, params in requests[:20]:  # warm the caches and the partition lookup
            client.get(f"/v2/{path}", params, HTTP_ACCEPT=ACCEPT)
        totals, sqls, queries, sizes = [], [], [], []
        for path, params in requests:
            timer = SqlTimer()
            with connection.execute_wrapper(timer):
                started = time.perf_counter()
                response = client.get(f"/v2/{path}", params, HTTP_ACCEPT=ACCEPT)
                totals.append((time.perf_counter() - started) * 1000)
            assert response.status_code in (200, 204), (path, params, response.status_code, response.content[:200])
            sqls.append(timer.elapsed * 1000)
            queries.append(timer.count)
            sizes.append(len(response.json()) if response.status_code == 200 else 0)
        print(f"{name:40} {statistics.median(totals):8.2f} {_percentile(totals, 0.95):8.2f} "
              f"{statistics.median(sqls):8.2f} {_percentile(sqls, 0.95):8.2f} {max(queries):8d} "
              f"{statistics.mean(sizes):8.1f}", flush=True)
        path, params = requests[0]
        with CaptureQueriesContext(connection) as captured:
            client.get(f"/v2/{path}", params, HTTP_ACCEPT=ACCEPT)
        (statement,) = [query["sql"] for query in captured.captured_queries]
        with connection.cursor() as cursor:
            cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS) {statement}")
            plan = "\n".join(row[0] for row in cursor.fetchall())
        explain_out.append(f"== {name}: GET /v2/{path} {params}\n{statement}\n\n{plan}\n")
    if explain_path is not None:
        explain_path.parent.mkdir(parents=True, exist_ok=True)
        explain_path.write_text("\n".join(explain_out))
        print(f"EXPLAIN (ANALYZE, BUFFERS) of one request per query written to {explain_path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=200, help="requests per query")
    parser.add_argument("--explain", type=Path, default=Path("bench/out/qido_explain.txt"))
    args = parser.parse_args()
    if connection.vendor != "postgresql":
        raise SystemExit("run against the PostgreSQL archive bench/qido_load.py loads (set DATABASE_URL)")
    run(args.runs, args.explain)


if __name__ == "__main__":
    main()
