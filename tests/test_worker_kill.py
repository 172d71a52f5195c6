"""A bulk update survives its worker's processes being SIGKILLed, on every backend.

Workers are started as `make run` starts them (`celery -A dicomsvc worker --concurrency=2`,
the pool the settings choose). On the embedded default (SQLite, filesystem broker) killing
the prefork pool's processes once left every later process waiting on a lock the dead one
held: the operation stayed `running` and the worker ran no task until restarted.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings

from changefeed.models import ChangeAction, ChangeFeedEntry
from operations import services as operation_services
from operations.models import Operation, OperationStatus
from studies.models import Instance
from tests.helpers import (
    operations_resume_run,
    patient_name_change,
    start,
    store,
    study_files,
    wait_for,
    worker_children,
    worker_kill,
    worker_start,
)

pytestmark = pytest.mark.django_db(transaction=True)

LEASE = {"DICOM_OPERATION_LEASE_SECONDS": "3"}
# One file at a time, 200 ms each: the kill lands inside the second study.
SLOW = {**LEASE, "DICOM_UPDATE_INSTANCE_DELAY_MS": "200", "DICOM_UPDATE_PARALLEL_FILES": "1"}


@pytest.fixture
def broker(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The workers' broker; this process enqueues nothing (see `operations_resume_run`)."""
    monkeypatch.setattr(operation_services, "_enqueue", lambda operation_id: None)
    if settings.CELERY_BROKER_URL.startswith("redis://"):
        import redis

        connection = redis.Redis.from_url(settings.CELERY_BROKER_URL)
        connection.flushdb()  # this run's own database: no task of another test is delivered
        yield
        connection.flushdb()
    else:
        yield  # the filesystem broker's folders are under the test's data dir


def _finished(operation_id: str) -> bool:
    return Operation.objects.get(pk=operation_id).status not in (OperationStatus.NOT_STARTED, OperationStatus.RUNNING)


def _studies(count: int) -> list[str]:
    return [store(*study_files(4))[0].study_instance_uid for _ in range(count)]


def _update(client, studies: list[str], name: str) -> str:  # noqa: ANN001
    response = start(client, {"studyInstanceUids": studies, "changeDataset": patient_name_change(name)})
    assert response.status_code == 202, response.content
    return response.json()["id"]


def _second_study_started(studies: list[str]) -> bool:
    return Instance.objects.filter(study_instance_uid=studies[1], new_watermark__isnull=False).exists()


def _assert_updated_once_each(studies: list[str], created: dict[int, int]) -> None:
    for instance in Instance.objects.filter(study_instance_uid__in=studies):
        updates = ChangeFeedEntry.objects.filter(sop_instance_uid=instance.sop_instance_uid, action=ChangeAction.UPDATE)
        assert list(updates.values_list("watermark", flat=True)) == [instance.watermark]
        assert instance.original_watermark == created[instance.pk]  # switched once: no intermediate version
        assert instance.new_watermark is None


def test_killed_pool_processes_leave_a_worker_that_finishes_the_update_and_takes_new_ones(
    client, broker, tmp_path: Path
):
    studies = _studies(3)
    created = dict(Instance.objects.values_list("pk", "watermark"))
    operation_id = _update(client, studies, "Pool^Killed")
    worker = worker_start(tmp_path, tmp_path / "worker.log", **SLOW)
    killed: list[int] = []
    try:
        wait_for(lambda: _second_study_started(studies), timeout=60, what="the second study to start")
        killed = worker_children(worker)
        # prefork (Redis) has two pool processes; with the filesystem broker tasks run in threads.
        assert len(killed) == (2 if settings.CELERY_WORKER_POOL == "prefork" else 0)
        for pid in killed:  # the main worker process lives on
            os.kill(pid, signal.SIGKILL)

        wait_for(lambda: _finished(operation_id), timeout=90, what="the update to be taken over and finish")
        assert Operation.objects.get(pk=operation_id).status == OperationStatus.SUCCEEDED
        _assert_updated_once_each(studies, created)

        later = _update(client, studies[:1], "Pool^Later")
        operations_resume_run(tmp_path)
        wait_for(lambda: _finished(later), timeout=60, what="the worker to run a new update")
        assert Operation.objects.get(pk=later).status == OperationStatus.SUCCEEDED
    finally:
        worker_kill(worker)
    if killed:
        assert "taking over from a runner silent" in (tmp_path / "worker.log").read_text()


def test_killed_worker_restarted_finishes_the_update_exactly_once(client, broker, tmp_path: Path):
    studies = _studies(3)
    created = dict(Instance.objects.values_list("pk", "watermark"))
    log = tmp_path / "worker.log"
    operation_id = _update(client, studies, "Worker^Killed")
    worker = worker_start(tmp_path, log, **SLOW)
    wait_for(lambda: _second_study_started(studies), timeout=60, what="the second study to start")
    worker_kill(worker)
    assert Operation.objects.get(pk=operation_id).checkpoint == {"index": 1}

    worker = worker_start(tmp_path, log, **LEASE)
    try:
        wait_for(lambda: _finished(operation_id), timeout=90, what="the restarted worker to finish the update")
    finally:
        worker_kill(worker)
    operation = Operation.objects.get(pk=operation_id)
    assert operation.status == OperationStatus.SUCCEEDED
    assert operation.results == {"studyProcessed": 3, "studyUpdated": 3, "studyFailed": 0, "instanceUpdated": 12}
    _assert_updated_once_each(studies, created)


@pytest.mark.skipif(not settings.CELERY_BROKER_URL.startswith("filesystem"), reason="the filesystem broker's worker")
def test_a_worker_goes_on_past_a_torn_message_file_and_runs_the_next_operation(client, broker, tmp_path: Path):
    # An empty message file first in the queue, as a publisher killed mid-write leaves it
    # (tests/test_broker.py): kombu's stock transport stopped the worker on it for good.
    studies = _studies(1)
    queue_folder = tmp_path / "broker" / "queue"
    queue_folder.mkdir(parents=True)
    (queue_folder / "0_torn.celery.msg").write_bytes(b"")
    log = tmp_path / "worker.log"
    operation_id = _update(client, studies, "Torn^Past")
    worker = worker_start(tmp_path, log)
    try:
        wait_for(
            lambda: _finished(operation_id), timeout=60, what="the worker that met the torn file to run the update"
        )
        assert worker.poll() is None
    finally:
        worker_kill(worker)
    operation = Operation.objects.get(pk=operation_id)
    assert operation.status == OperationStatus.SUCCEEDED
    assert operation.results["instanceUpdated"] == 4
    text = log.read_text()
    assert "broker: skipped an unreadable message file of queue 'celery'" in text
    assert "Unrecoverable error" not in text
