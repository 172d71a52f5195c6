"""UPS-RS workitems on PostgreSQL: creates per second with 8 clients, then search latency.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/dicomsvc_bench \\
        .venv/bin/python bench/workitem_bench.py [--count 10000] [--clients 8] [--runs 200]

Starts the server (uvicorn, one process, as `make run`) on a free port with data partitions
on, creates `--count` workitems in a fresh partition from `--clients` keep-alive connections
(the first request creates the partition), claims a third of them, then times `--runs`
searches per case over HTTP: PatientName fuzzy (the start of a family and a given name),
ScheduledProcedureStepStartDateTime over one day, and ProcedureStepState. Prints creates/s
and p50/p95 per search with the mean number of results (each page is at most 100).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dicomsvc.settings")

import django  # noqa: E402

django.setup()  # the dataset factories live with the tests' helpers

from tests.helpers.workitems import code, new_workitem, referenced_request, state_change  # noqa: E402

FAMILY = [f"{stem}{suffix}" for stem in ("Smith", "Jones", "Garcia", "Nguyen", "Okafor", "Kowalski", "Tanaka",
                                          "Müller", "Rossi", "Silva") for suffix in ("", "son", "er", "ez", "ova")]
GIVEN = ["Anna", "Ben", "Carla", "David", "Emma", "Farid", "Grace", "Hugo", "Ines", "Jon", "Kira", "Liam"]
JSON = "application/dicom+json"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def workitem(rng: random.Random, number: int) -> tuple[str, dict]:
    uid = f"2.25.{uuid.uuid4().int}"
    day = 1 + number % 30
    start = f"202601{day:02d}{rng.randint(7, 18):02d}{rng.choice((0, 15, 30, 45)):02d}00"
    station = f"CT{rng.randint(1, 8)}"
    return uid, new_workitem(
        uid,
        PatientName=f"{rng.choice(FAMILY)}^{rng.choice(GIVEN)}",
        PatientID=f"P{number:07d}",
        ScheduledProcedureStepStartDateTime=start,
        ScheduledStationNameCodeSequence=code(f"Scanner {station}", station),
        ReferencedRequestSequence=referenced_request(AccessionNumber=f"A{number:07d}"),
    )


def request(conn: http.client.HTTPConnection, method: str, path: str, body: object = None) -> tuple[int, bytes]:
    headers = {"Accept": JSON}
    data = None
    if body is not None:
        data = json.dumps([body]).encode()
        headers["Content-Type"] = JSON
    conn.request(method, path, body=data, headers=headers)
    response = conn.getresponse()
    return response.status, response.read()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--runs", type=int, default=200)
    args = parser.parse_args()
    if not os.environ.get("DATABASE_URL", "").startswith("postgres"):
        sys.exit("Set DATABASE_URL to a PostgreSQL database.")
    env = {**os.environ, "DICOM_ENABLE_DATA_PARTITIONS": "true", "MALLOC_ARENA_MAX": "1"}
    python = sys.executable
    subprocess.run([python, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True)
    port = free_port()
    server = subprocess.Popen(
        [str(Path(python).parent / "uvicorn"), "dicomsvc.asgi:application", "--port", str(port), "--no-access-log"],
        cwd=ROOT, env=env,
    )
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.2)
        run(args, port)
    finally:
        server.terminate()
        server.wait(timeout=30)


def run(args: argparse.Namespace, port: int) -> None:
    partition = f"bench-{uuid.uuid4().hex[:8]}"
    base = f"/v2/partitions/{partition}/workitems"
    rng = random.Random(16)
    items = [workitem(rng, number) for number in range(args.count)]
    # The first create makes the partition, so the timed ones all find it.
    first_uid, first = items[0]
    assert request(http.client.HTTPConnection("127.0.0.1", port), "POST", f"{base}?{first_uid}", first)[0] == 201
    failures: list[int] = []

    def client(share: list[tuple[str, dict]]) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        for uid, body in share:
            status, _ = request(conn, "POST", f"{base}?{uid}", body)
            if status != 201:
                failures.append(status)

    rest = items[1:]
    shares = [rest[index :: args.clients] for index in range(args.clients)]
    threads = [threading.Thread(target=client, args=(share,)) for share in shares]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    print(f"create: {len(rest)} workitems, {args.clients} clients, {elapsed:.1f} s, "
          f"{len(rest) / elapsed:.0f} creates/s, failures {len(failures)}")

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    for uid, _ in items[: args.count // 3]:
        claim = state_change("IN PROGRESS", f"2.25.{uuid.uuid4().int}")
        assert request(conn, "PUT", f"{base}/{uid}/state", claim)[0] == 200

    cases: dict[str, list[dict[str, str]]] = {"PatientName fuzzy": [], "ScheduledProcedureStepStartDateTime day": [],
                                              "ProcedureStepState": []}
    for _ in range(args.runs):
        family, given = rng.choice(FAMILY), rng.choice(GIVEN)
        words = f"{family[: rng.randint(3, 5)]} {given[: rng.randint(1, 2)]}"
        cases["PatientName fuzzy"].append({"PatientName": words, "fuzzymatching": "true"})
        day = rng.randint(1, 30)
        cases["ScheduledProcedureStepStartDateTime day"].append(
            {"ScheduledProcedureStepStartDateTime": f"202601{day:02d}-202601{day:02d}"}
        )
        cases["ProcedureStepState"].append({"ProcedureStepState": rng.choice(("SCHEDULED", "IN PROGRESS"))})
    for name, queries in cases.items():
        times, counts = [], []
        for params in queries:
            started = time.perf_counter()
            status, body = request(conn, "GET", f"{base}?{urlencode(params)}")
            times.append((time.perf_counter() - started) * 1000)
            counts.append(len(json.loads(body)) if status == 200 else 0)
        p95 = statistics.quantiles(times, n=20)[-1]
        print(f"search {name}: p50 {statistics.median(times):.1f} ms, p95 {p95:.1f} ms, "
              f"mean results {statistics.mean(counts):.0f}")


if __name__ == "__main__":
    main()
