"""Benchmark: a bulk update of 50 studies x 20 CT_small instances by one real Celery worker.

Usage (from the repository root):

    python bench/bulk_update_bench.py                       # SQLite + filesystem broker in a temp dir
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench CELERY_BROKER_URL=redis://127.0.0.1:6379/5 \
        python bench/bulk_update_bench.py                   # PostgreSQL + Redis (use a dedicated database)

Options: --studies N (default 50, the API maximum), --instances N per study (default 20).
Prints the store time, the time from the $bulkUpdate call to the operation being finished,
and the update throughput in instances per second.
"""

from __future__ import annotations

import argparse
import io
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _environment() -> str:
    """Point the data dir (and, unless given, the database and broker) at a fresh temp dir."""
    data_dir = os.environ.get("DICOM_DATA_DIR") or tempfile.mkdtemp(prefix="dicomsvc-bench-")
    os.environ["DICOM_DATA_DIR"] = data_dir
    os.environ.setdefault("DATABASE_URL", f"sqlite:///{data_dir}/db.sqlite3")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dicomsvc.settings")
    sys.path.insert(0, str(ROOT))
    return data_dir


def _store(studies: int, per_study: int) -> list[str]:
    import pydicom
    from pydicom.data import get_testdata_file
    from pydicom.uid import generate_uid

    from partitions.models import DEFAULT_PARTITION_NAME
    from partitions.selectors import partition_get
    from studies.dicom.reader import instance_parse
    from studies.services import instance_store

    partition = partition_get(name=DEFAULT_PARTITION_NAME)
    template = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    uids = []
    for _ in range(studies):
        study_uid = generate_uid()
        series_uid = generate_uid()
        uids.append(study_uid)
        for number in range(per_study):
            template.StudyInstanceUID, template.SeriesInstanceUID = study_uid, series_uid
            template.SOPInstanceUID = template.file_meta.MediaStorageSOPInstanceUID = generate_uid()
            template.InstanceNumber = number + 1
            buffer = io.BytesIO()
            template.save_as(buffer, enforce_file_format=True)
            buffer.seek(0)
            instance_store(partition=partition, parsed=instance_parse(buffer, validate_all=True))
    return uids


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--studies", type=int, default=50)
    parser.add_argument("--instances", type=int, default=20)
    args = parser.parse_args()

    data_dir = _environment()
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    from dicomsvc.celery import broker_dirs_create
    from operations.models import Operation, OperationStatus
    from operations.update.services import update_create
    from partitions.models import DEFAULT_PARTITION_NAME
    from partitions.selectors import partition_get

    call_command("migrate", verbosity=0)
    broker_dirs_create()
    database = settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1]
    broker = settings.CELERY_BROKER_URL.split(":", 1)[0]
    total = args.studies * args.instances
    print(f"database={database} broker={broker} data_dir={data_dir}")

    began = time.perf_counter()
    uids = _store(args.studies, args.instances)
    took = time.perf_counter() - began
    print(f"stored {total} instances ({args.studies} studies x {args.instances}) in {took:.1f} s")

    log_path = Path(data_dir) / "bench-worker.log"
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "dicomsvc", "worker", "--pool=solo", "--loglevel=WARNING",
         "--without-gossip", "--without-mingle", "--without-heartbeat", "-n", f"bench{os.getpid()}@%h"],
        cwd=ROOT, env=os.environ.copy(), stdout=log_path.open("wb"), stderr=subprocess.STDOUT,
    )
    try:
        time.sleep(3)  # let the worker connect before the clock starts
        change = {"00100010": {"vr": "PN", "Value": [{"Alphabetic": "Bench^Updated"}]}}
        started = time.perf_counter()
        operation = update_create(
            partition=partition_get(name=DEFAULT_PARTITION_NAME),
            body={"studyInstanceUids": uids, "changeDataset": change},
        )
        while True:
            row = Operation.objects.get(pk=operation.pk)
            if row.status not in (OperationStatus.NOT_STARTED, OperationStatus.RUNNING):
                break
            if worker.poll() is not None:
                raise SystemExit(f"worker exited: see {log_path}")
            time.sleep(0.02)
        elapsed = time.perf_counter() - started
    finally:
        worker.terminate()
        worker.wait(timeout=30)

    updated = row.results["instanceUpdated"]
    print(f"operation {row.pk.hex}: {row.status}, results {row.results}")
    print(f"time to completed: {elapsed:.2f} s")
    print(f"throughput: {updated / elapsed:.0f} instances/s ({row.results['studyUpdated'] / elapsed:.1f} studies/s)")


if __name__ == "__main__":
    main()
