"""Extended query tags on the archive bench/qido_load.py loads: STOW with and without tags,
reindex throughput, and QIDO latency on the tags.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/dicomsvc_bench3 DICOM_DATA_DIR=/tmp/eqt-bench \\
        .venv/bin/python bench/eqt_bench.py [--stow-rounds 10] [--runs 200]

1. STOW A/B, before any tag exists: rounds of `--stow-per-round` one-instance STOW requests
   with three tags defined, then with none (the order alternates per round), each request
   through the whole Django stack in-process. The tags of the A/B are rows made ready
   directly and removed after each of its rounds (with the few values its stores wrote).
2. Reindex: the three tags of issue #15 (BodyPartExamined CS at series level, ProtocolName
   LO at instance level, AcquisitionDate DA at study level) are added through the service
   POST calls; their reindex's runner runs in this process, and for each further worker of
   `--workers` (e.g. `1,2`) a Celery worker process takes a helper task and indexes slices
   beside it (needs CELERY_BROKER_URL=redis://...). Reports instances/s per worker count; the
   tags, values and operation are removed between runs.
3. QIDO: p50/p95 of requests filtering on each tag together with a core attribute.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dicomsvc.settings")

import django  # noqa: E402

django.setup()

import pydicom  # noqa: E402
from django.conf import settings  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402
from pydicom.data import get_testdata_file  # noqa: E402
from pydicom.datadict import tag_for_keyword  # noqa: E402
from pydicom.uid import generate_uid  # noqa: E402

from dicomsvc.asgi import server_startup  # noqa: E402
from operations.models import Operation  # noqa: E402
from operations.reindex.services import reindex_create  # noqa: E402
from studies.eqt.models import ExtendedQueryTag  # noqa: E402
from studies.eqt.tags import tags_cache_clear  # noqa: E402
from studies.models import Instance, Series, Study  # noqa: E402

ACCEPT = "application/dicom+json"
BOUNDARY = "EQTBENCHBOUNDARY"
TAGS = [
    {"path": "BodyPartExamined", "level": "series"},
    {"path": "ProtocolName", "level": "instance"},
    {"path": "AcquisitionDate", "level": "study"},
]
AB_TAGS = [("00180015", "CS", "series"), ("00181030", "LO", "instance"), ("00080022", "DA", "study")]


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(share * (len(ordered) - 1))))]


def _stow_body(template: pydicom.Dataset) -> bytes:
    import io

    template.StudyInstanceUID = generate_uid()
    template.SeriesInstanceUID = generate_uid()
    template.SOPInstanceUID = template.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    out = io.BytesIO()
    template.save_as(out, enforce_file_format=True)
    data = out.getvalue()
    return (
        f"--{BOUNDARY}\r\nContent-Type: application/dicom\r\n\r\n".encode() + data + f"\r\n--{BOUNDARY}--\r\n".encode()
    )


def stow_ab(rounds: int, per_round: int) -> None:
    if ExtendedQueryTag.objects.exists():
        raise SystemExit("the STOW A/B runs before any tag exists (delete them, or load the archive again)")
    client = Client()
    template = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    template.BodyPartExamined, template.ProtocolName, template.AcquisitionDate = "CHEST", "CT PROTOCOL 01 A", "20200101"
    content_type = f'multipart/related; type="application/dicom"; boundary={BOUNDARY}'
    timings: dict[str, list[float]] = {"three tags": [], "no tag": []}

    def store(mode: str) -> None:
        if mode == "three tags":
            ExtendedQueryTag.objects.bulk_create(
                ExtendedQueryTag(path=path, vr=vr, level=level, status="ready") for path, vr, level in AB_TAGS
            )
        tags_cache_clear()
        bodies = [_stow_body(template) for _ in range(per_round)]
        client.post("/v2/studies", data=bodies[0], content_type=content_type, HTTP_ACCEPT=ACCEPT)  # warm the cache
        for body in bodies[1:]:
            started = time.perf_counter()
            response = client.post("/v2/studies", data=body, content_type=content_type, HTTP_ACCEPT=ACCEPT)
            timings[mode].append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200, response.content[:300]
        ExtendedQueryTag.objects.all().delete()
        tags_cache_clear()

    for round_ in range(rounds):
        for mode in (("three tags", "no tag") if round_ % 2 == 0 else ("no tag", "three tags")):
            store(mode)
    print(f"STOW A/B, {rounds} rounds x {per_round - 1} timed one-instance requests per mode (alternating):")
    for mode, values in timings.items():
        print(f"  {mode:10}  mean {statistics.mean(values):6.2f} ms  p50 {statistics.median(values):6.2f} ms  "
              f"p95 {_percentile(values, 0.95):6.2f} ms")
    mean_ratio = statistics.mean(timings["three tags"]) / statistics.mean(timings["no tag"])
    median_ratio = statistics.median(timings["three tags"]) / statistics.median(timings["no tag"])
    print(f"  three tags / no tag: mean {mean_ratio:.3f}, p50 {median_ratio:.3f}", flush=True)


def _workers(count: int, log_dir: Path) -> list[subprocess.Popen[bytes]]:
    """`count` Celery worker processes (one task at a time each) on this database and broker."""
    env = {
        **os.environ,
        # Nothing stores meanwhile: the run need not wait for other processes' tag caches.
        "DICOM_EXTENDED_QUERY_TAG_CACHE_MS": "0",
        "DICOM_REINDEX_HELPERS": str(count - 1),
    }
    processes = []
    for index in range(count):
        log = (log_dir / f"eqt-bench-worker-{index}.log").open("wb")
        processes.append(subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "dicomsvc", "worker", "--pool=solo", "--loglevel=INFO",
             "--without-gossip", "--without-mingle", "--without-heartbeat", "-n", f"eqtbench{index}@%h"],
            cwd=Path(__file__).resolve().parent.parent, env=env, stdout=log, stderr=subprocess.STDOUT,
        ))
    for index in range(count):
        log_path = log_dir / f"eqt-bench-worker-{index}.log"
        while b" ready." not in log_path.read_bytes():
            time.sleep(0.2)
    return processes


def _tags_remove() -> None:
    """Remove the tags, their values, and their attributes from the search projections: the
    next reindex does all the writing a first one does."""
    keys = [f"{tag_for_keyword(entry['path']) or 0:08X}" for entry in TAGS]
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE studies_extendedquerytagvalue, studies_extendedquerytagerror")
        cursor.execute(
            "UPDATE studies_instance SET search_metadata = (search_metadata::jsonb - %s - %s - %s)::text "
            "WHERE search_metadata <> '' AND search_metadata::jsonb ?| %s",
            [*keys, keys],
        )
        cursor.execute("VACUUM (ANALYZE) studies_instance")
    ExtendedQueryTag.objects.all().delete()
    Operation.objects.filter(type="reindex").delete()
    tags_cache_clear()


def reindex(workers: int, log_dir: Path) -> None:
    """Add the tags (enqueueing the reindex) and wait for `workers` Celery workers to finish it."""
    total = Instance.objects.count()
    processes = _workers(workers, log_dir)
    try:
        started = time.perf_counter()
        operation, _tags = reindex_create(body=TAGS, version_segment="2")
        while True:
            operation.refresh_from_db()
            if operation.status not in ("notStarted", "running"):
                break
            time.sleep(0.2)
        elapsed = time.perf_counter() - started
    finally:
        for process in processes:
            process.terminate()
            process.wait()
    tags_cache_clear()
    print(f"reindex of {total} instances, 3 tags, {workers} worker(s): {operation.status} in {elapsed:.1f} s = "
          f"{total / elapsed:.0f} instances/s", flush=True)


def _cases(rng: random.Random, count: int) -> dict[str, list[tuple[str, dict[str, str]]]]:
    series = list(
        Series.objects.order_by("?").values_list("modality", "study__patient_id", "study__study_date")[:count]
    )
    metadata = list(Instance.objects.order_by("?").values_list("metadata", flat=True)[:count])
    protocols = [json.loads(text)["00181030"]["Value"][0] for text in metadata]
    parts = {"CT": ["CHEST", "HEAD"], "MR": ["BRAIN", "KNEE"], "CR": ["CHEST"], "DX": ["KNEE"], "US": ["ABDOMEN"],
             "MG": ["BREAST"], "PT": ["WHOLEBODY"], "XA": ["HEART"], "NM": ["WHOLEBODY"]}
    cases: dict[str, list[tuple[str, dict[str, str]]]] = {
        # Core attributes alone, for comparison: the same stack without a tag.
        "core only: series by Modality": [("series", {"Modality": modality}) for modality, _pid, _day in series],
        "core only: series by PatientID": [("series", {"PatientID": pid}) for _m, pid, _day in series],
        "series: BodyPartExamined + Modality": [
            ("series", {"BodyPartExamined": rng.choice(parts[modality]), "Modality": modality})
            for modality, _pid, _day in series
        ],
        "series: BodyPartExamined + PatientID": [
            ("series", {"BodyPartExamined": rng.choice(parts[modality]), "PatientID": pid})
            for modality, pid, _day in series
        ],
        "instances: ProtocolName + PatientID": [
            ("instances", {"ProtocolName": protocol, "PatientID": pid})
            for protocol, (_m, pid, _d) in zip(protocols, series, strict=False)
        ],
        "instances: ProtocolName + Modality": [
            ("instances", {"ProtocolName": protocol, "Modality": protocol.split()[0]}) for protocol in protocols
        ],
        "studies: AcquisitionDate (30 d) + ModalitiesInStudy": [],
        "studies: AcquisitionDate + PatientID": [
            ("studies", {"AcquisitionDate": f"{day:%Y%m%d}-", "PatientID": pid}) for _m, pid, day in series
        ],
    }
    for modality, _pid, day in series:
        high = type(day).fromordinal(day.toordinal() + 30)
        cases["studies: AcquisitionDate (30 d) + ModalitiesInStudy"].append(
            ("studies", {"AcquisitionDate": f"{day:%Y%m%d}-{high:%Y%m%d}", "ModalitiesInStudy": modality})
        )
    return cases


def qido(runs: int, explain_path: Path | None) -> None:
    client = Client()
    cases = _cases(random.Random(7), runs)
    # What the server does before its first request (ASGI lifespan start-up), gc.freeze()
    # included: unfrozen, this process's full collections took 25-60 ms inside timed requests.
    server_startup()
    # `queries`: SQL statements per request, median (each process reloads its tag list once per
    # DICOM_EXTENDED_QUERY_TAG_CACHE_MS, which adds one to the request that does).
    print(f"{'query':52} {'p50 ms':>8} {'p95 ms':>8} {'queries':>8} {'results':>8}")
    explain: list[str] = []
    for name, requests in cases.items():
        for path, params in requests[:20]:
            client.get(f"/v2/{path}", params, HTTP_ACCEPT=ACCEPT)
        totals, queries, sizes = [], [], []
        for path, params in requests:
            with CaptureQueriesContext(connection) as captured:
                started = time.perf_counter()
                response = client.get(f"/v2/{path}", params, HTTP_ACCEPT=ACCEPT)
                totals.append((time.perf_counter() - started) * 1000)
            assert response.status_code in (200, 204), (path, params, response.status_code, response.content[:200])
            queries.append(len(captured.captured_queries))
            sizes.append(len(response.json()) if response.status_code == 200 else 0)
        print(f"{name:52} {statistics.median(totals):8.2f} {_percentile(totals, 0.95):8.2f} "
              f"{statistics.median(queries):8.0f} {statistics.mean(sizes):8.1f}", flush=True)
        path, params = requests[0]
        with CaptureQueriesContext(connection) as captured:
            client.get(f"/v2/{path}", params, HTTP_ACCEPT=ACCEPT)
        statement = captured.captured_queries[-1]["sql"]
        with connection.cursor() as cursor:
            cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS) {statement}")
            plan = "\n".join(row[0] for row in cursor.fetchall())
        explain.append(f"== {name}: GET /v2/{path} {params}\n{statement}\n\n{plan}\n")
    if explain_path is not None:
        explain_path.parent.mkdir(parents=True, exist_ok=True)
        explain_path.write_text("\n".join(explain))
        print(f"EXPLAIN (ANALYZE, BUFFERS) of one request per query written to {explain_path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stow-rounds", type=int, default=10)
    parser.add_argument("--stow-per-round", type=int, default=21, help="requests per round and mode (first one warms)")
    parser.add_argument("--runs", type=int, default=200, help="QIDO requests per query")
    parser.add_argument("--skip", choices=["stow", "reindex", "qido"], action="append", default=[])
    parser.add_argument("--workers", default="1,2", help="worker counts to reindex with, one run each")
    parser.add_argument("--explain", type=Path, default=Path("bench/out/eqt_explain.txt"))
    args = parser.parse_args()
    if connection.vendor != "postgresql":
        raise SystemExit("run against the PostgreSQL archive bench/qido_load.py loads (set DATABASE_URL)")
    print(f"archive: {Study.objects.count()} studies, {Instance.objects.count()} instances", flush=True)
    if "stow" not in args.skip:
        stow_ab(args.stow_rounds, args.stow_per_round)
    args.explain.parent.mkdir(parents=True, exist_ok=True)
    if "reindex" not in args.skip:
        if not settings.CELERY_BROKER_URL.startswith("redis://"):
            raise SystemExit("the reindex runs on Celery workers: set CELERY_BROKER_URL=redis://...")
        counts = [int(count) for count in args.workers.split(",")]
        for index, count in enumerate(counts):
            if index or ExtendedQueryTag.objects.exists():
                _tags_remove()
            reindex(count, args.explain.parent)
    if "qido" not in args.skip:
        with connection.cursor() as cursor:
            cursor.execute("VACUUM (ANALYZE) studies_extendedquerytagvalue")
        qido(args.runs, args.explain)


if __name__ == "__main__":
    main()
