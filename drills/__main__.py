"""`python -m drills [--short] [--backend sqlite|postgres|all] [--seed N]` (`make drill`: the full set).

SQLite with the filesystem broker always; PostgreSQL with Redis when DRILL_DATABASE_URL and
DRILL_BROKER_URL are set (the database is dropped and created afresh, the Redis database
emptied). Exit status 1 when any invariant failed; the figures are printed as each drill ends.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path

from drills import crash, fuzz, race
from drills.common import Drill
from drills.server import Server

# The server's settings under drill: a short lease, so a takeover is seen within the run;
# CREATING rows stale after 1 s, so dicom_cleanup clears a killed request's rows at once.
DRILL_ENV = {
    "DICOM_OPERATION_LEASE_SECONDS": "10",
    "DICOM_STALE_CREATING_SECONDS": "1",
    "DICOM_UPDATE_INSTANCE_DELAY_MS": "30",
    "DJANGO_LOG_LEVEL": "WARNING",
}


def _fresh_postgres(url: str) -> None:
    import psycopg

    parts = urllib.parse.urlsplit(url)
    name = parts.path.lstrip("/")
    admin = urllib.parse.urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        connection.execute(f'CREATE DATABASE "{name}"')


def _empty_redis(url: str) -> None:
    import redis

    redis.Redis.from_url(url).flushdb()


def run_backend(backend: str, *, short: bool, seed: int, data_root: Path) -> Drill:
    database_url = broker_url = None
    if backend == "postgres":
        database_url, broker_url = os.environ["DRILL_DATABASE_URL"], os.environ["DRILL_BROKER_URL"]
        _fresh_postgres(database_url)
        _empty_redis(broker_url)
    # The short run's lease is shorter still, to keep `.ci/run` quick; the full run uses the 10 s.
    env = {**DRILL_ENV, "DICOM_OPERATION_LEASE_SECONDS": "5" if short else "10"}
    server = Server(data_root / backend, database_url=database_url, broker_url=broker_url, env=env)
    drill = Drill(server=server, backend=backend, short=short, rng=random.Random(seed))
    started = time.monotonic()
    kind = "short" if short else "full"
    print(f"== {backend} ({kind}, seed {seed}): {server.base}, data in {server.data_dir}", flush=True)
    server.start()
    try:
        steps = [
            fuzz.stow_bodies,
            fuzz.paths_and_queries,
            race.identical_stows,
            crash.web_killed_during_stow,
            crash.worker_killed_during_update,
            crash.worker_killed_during_export,
            crash.worker_killed_during_reindex,
            race.stow_delete_update,
        ]
        if not short:
            steps.insert(5, lambda d: crash.worker_killed_during_update(d, whole_worker=True))
        for step in steps:
            try:
                step(drill)
            except Exception as exc:  # a drill that cannot even finish is a failure, not a crash of the run
                exited = server.worker_exit()
                drill.fail(
                    getattr(step, "__name__", "drill"),
                    f"{type(exc).__name__}: {exc}" + (f" ({exited})" if exited else ""),
                )
    finally:
        server.stop()
    drill.report("total", seconds=round(time.monotonic() - started), failures=len(drill.failures))
    return drill


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m drills", description=__doc__)
    parser.add_argument("--short", action="store_true", help="the CI version: fewer rounds, bodies and seconds")
    parser.add_argument("--backend", choices=["sqlite", "postgres", "all"], default="all")
    parser.add_argument("--seed", type=int, default=int(time.time()))
    parser.add_argument("--keep", action="store_true", help="keep the data dirs (logs, blobs) after a passing run")
    args = parser.parse_args()
    backends = ["sqlite", "postgres"] if args.backend == "all" else [args.backend]
    if "postgres" in backends and not (os.environ.get("DRILL_DATABASE_URL") and os.environ.get("DRILL_BROKER_URL")):
        if args.backend == "postgres":
            parser.error("set DRILL_DATABASE_URL and DRILL_BROKER_URL for the PostgreSQL drill")
        print("PostgreSQL + Redis skipped: set DRILL_DATABASE_URL and DRILL_BROKER_URL", flush=True)
        backends.remove("postgres")
    data_root = Path(tempfile.mkdtemp(prefix="dicomsvc-drill-"))
    drills = [run_backend(backend, short=args.short, seed=args.seed, data_root=data_root) for backend in backends]
    failures = [failure for drill in drills for failure in drill.failures]
    if failures:
        print("FAILED:\n" + "\n".join(failures) + f"\nlogs and data kept in {data_root} (seed {args.seed})")
        return 1
    if not args.keep:
        shutil.rmtree(data_root, ignore_errors=True)
    print(f"drills passed (seed {args.seed})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
