"""Bulk update through real Celery workers (the PostgreSQL/Redis run): completion, SIGKILL and resume.

The workers are `celery -A dicomsvc worker` subprocesses on the test database and this
run's Redis database; the test commits its rows (transactional test) so they see them.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable

import pytest
from django.conf import settings

from changefeed.models import ChangeAction, ChangeFeedEntry
from operations.models import Operation, OperationStatus
from studies.models import Instance, OrphanBlob, Study
from tests.helpers import blob_bytes, patient_name_change, read, start, store, study_files, wait_for

pytestmark = [
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
    pytest.mark.skipif(
        not settings.CELERY_BROKER_URL.startswith("redis://")
        or not settings.DATABASES["default"]["ENGINE"].endswith("postgresql"),
        reason="needs a real worker: run with DATABASE_URL=postgres://... and CELERY_BROKER_URL=redis://...",
    ),
]

def _finished(operation_id: str) -> Callable[[], bool]:
    return lambda: Operation.objects.get(pk=operation_id).status not in (
        OperationStatus.NOT_STARTED, OperationStatus.RUNNING,
    )


def test_worker_completes_an_update(client, workers):
    studies = [store(*study_files(3))[0].study_instance_uid for _ in range(2)]
    workers.start()
    response = start(client, {"studyInstanceUids": studies, "changeDataset": patient_name_change("Worker^Done")})
    assert response.status_code == 202
    operation_id = response.json()["id"]

    wait_for(_finished(operation_id), timeout=120, what="the operation to finish")

    status = client.get(f"/v2/operations/{operation_id}")
    assert status.status_code == 200
    assert status.json()["status"] == "succeeded"
    assert status.json()["results"] == {"studyProcessed": 2, "studyUpdated": 2, "studyFailed": 0, "instanceUpdated": 6}
    for study_uid in studies:
        assert Study.objects.get(study_instance_uid=study_uid).patient_name == "Worker^Done"
        for instance in Instance.objects.filter(study_instance_uid=study_uid):
            assert str(read(blob_bytes(instance, instance.watermark)).PatientName) == "Worker^Done"
            assert ChangeFeedEntry.objects.filter(
                sop_instance_uid=instance.sop_instance_uid, action=ChangeAction.UPDATE, watermark=instance.watermark
            ).count() == 1


def test_worker_killed_mid_operation_is_finished_by_a_new_worker_exactly_once(client, workers, tmp_path):
    stored = {}
    studies = []
    for _ in range(3):
        files = study_files(4)
        uid = store(*files)[0].study_instance_uid
        studies.append(uid)
        stored[uid] = files
    created = {i.pk: i.watermark for i in Instance.objects.all()}
    # Slowed down (one file at a time, 250 ms each) so the kill lands inside a study.
    first, _first_log = workers.start(delay_ms=250, parallel_files=1)
    response = start(client, {"studyInstanceUids": studies, "changeDataset": patient_name_change("Killed^Resumed")})
    operation_id = response.json()["id"]

    # Kill it in the middle of the second study: the first is switched, the second has
    # reserved versions and some new blobs written but not switched.
    wait_for(
        lambda: Instance.objects.filter(study_instance_uid=studies[1], new_watermark__isnull=False).exists(),
        timeout=60, what="the second study to start",
    )
    time.sleep(0.4)
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=10)

    operation = Operation.objects.get(pk=operation_id)
    assert operation.status == OperationStatus.RUNNING
    assert operation.checkpoint == {"index": 1}
    assert not Instance.objects.filter(study_instance_uid=studies[1], original_watermark__isnull=False).exists()
    assert Instance.objects.filter(study_instance_uid=studies[1], new_watermark__isnull=False).count() == 4

    _second, second_log = workers.start()
    wait_for(_finished(operation_id), timeout=120, what="the new worker to finish the operation")

    operation = Operation.objects.get(pk=operation_id)
    assert operation.status == OperationStatus.SUCCEEDED, second_log.read_text()
    assert operation.results == {"studyProcessed": 3, "studyUpdated": 3, "studyFailed": 0, "instanceUpdated": 12}
    assert "taking over from a runner silent" in second_log.read_text()
    for study_uid in studies:
        for instance in Instance.objects.filter(study_instance_uid=study_uid):
            updates = ChangeFeedEntry.objects.filter(
                sop_instance_uid=instance.sop_instance_uid, action=ChangeAction.UPDATE
            )
            assert updates.count() == 1  # updated exactly once
            assert updates.get().watermark == instance.watermark
            assert instance.original_watermark == created[instance.pk]  # the stored file stays the original
            assert instance.new_watermark is None
            assert blob_bytes(instance, instance.original_watermark) in stored[study_uid]
            latest = read(blob_bytes(instance, instance.watermark))
            assert str(latest.PatientName) == "Killed^Resumed"
            assert latest.PixelData == read(blob_bytes(instance, instance.original_watermark)).PixelData
    # Nothing of the killed attempt is left: exactly original + latest per instance.
    blobs = [p for p in (tmp_path / "blobs").rglob("*.dcm")]
    assert len(blobs) == 12 * 2
    assert not OrphanBlob.objects.exists()
