"""A real Celery worker runs an export end to end (PostgreSQL + Redis runs only).

The request commits the operation, the on-commit hook publishes the task to Redis, and a
worker process started here picks it up and writes the files.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.db import connection
from pydicom.uid import generate_uid

from operations.models import ACTIVE_STATUSES, Operation, OperationStatus
from tests.helpers import dicom_bytes, export_body, files_under, post_export, result_path, store

pytestmark = [
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
    pytest.mark.skipif(
        not django_settings.CELERY_BROKER_URL.startswith("redis://"), reason="needs CELERY_BROKER_URL=redis://..."
    ),
]

REPO = Path(__file__).resolve().parent.parent


def _database_url() -> str:
    db = connection.settings_dict
    password = f":{db['PASSWORD']}" if db["PASSWORD"] else ""
    return f"postgres://{db['USER']}{password}@{db['HOST']}:{db['PORT'] or 5432}/{db['NAME']}"


def test_a_worker_process_runs_the_export(client, tmp_path, settings):
    if connection.vendor != "postgresql":
        pytest.skip("the worker process needs a database it can share (PostgreSQL)")
    root = tmp_path / "exports"
    root.mkdir()
    settings.DICOM_EXPORT_FILESYSTEM_ROOTS = [str(root)]
    study = generate_uid()
    parts = [dicom_bytes(StudyInstanceUID=study) for _ in range(3)]
    store(*parts)

    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "dicomsvc", "worker", "--pool=solo", "--loglevel=WARNING",
         "--without-mingle", "--without-gossip"],
        cwd=REPO,
        env={
            **os.environ,
            "DATABASE_URL": _database_url(),
            "CELERY_BROKER_URL": django_settings.CELERY_BROKER_URL,
            "DICOM_DATA_DIR": str(tmp_path),  # its blobs are tmp_path/blobs, as in this test
            "DICOM_EXPORT_FILESYSTEM_ROOTS": str(root),
        },
    )
    try:
        response = post_export(client, export_body([study, generate_uid()], root))
        assert response.status_code == 202
        operation = Operation.objects.get(pk=response.json()["id"])
        deadline = time.monotonic() + 120
        while operation.status in ACTIVE_STATUSES and time.monotonic() < deadline and worker.poll() is None:
            time.sleep(0.2)
            operation.refresh_from_db()
    finally:
        worker.terminate()
        worker.wait(timeout=30)

    assert operation.status == OperationStatus.SUCCEEDED, (operation.status, operation.errors)
    folder = root / operation.pk.hex
    assert files_under(folder) == {folder / "errors.log"} | {result_path(folder, data) for data in parts}
    for data in parts:
        assert result_path(folder, data).read_bytes() == data
    assert (operation.results["exported"], operation.results["skipped"]) == (3, 1)
