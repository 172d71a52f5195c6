"""GET /v{n}/operations/{id} and the operation runner: lease, takeover, resume."""

from __future__ import annotations

import datetime as dt
import time
import uuid
from functools import partial

import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import IntegrityError, transaction
from django.utils import timezone

from operations import services as operation_services
from operations.handlers import HANDLERS
from operations.models import Operation, OperationStatus, OperationType
from operations.runner import RunResult, operation_run
from operations.services import LeaseLost, OperationRun, operation_create

pytestmark = pytest.mark.django_db


def _operation(status: str = OperationStatus.NOT_STARTED, **fields: object) -> Operation:
    fields.setdefault("percent_complete", 0)
    return Operation.objects.create(type=OperationType.EXPORT, status=status, **fields)


@pytest.fixture
def export_handler(monkeypatch: pytest.MonkeyPatch):
    """A stand-in handler for the EXPORT type, recording its runs."""
    calls: list[OperationRun] = []

    def handle(run: OperationRun) -> OperationStatus:
        calls.append(run)
        run.progress(percent_complete=50, checkpoint={"step": 1}, results={"exported": 1})
        return OperationStatus.SUCCEEDED

    monkeypatch.setitem(HANDLERS, OperationType.EXPORT, handle)
    return calls


@pytest.fixture
def enqueued(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Operation ids handed to the broker (the broker itself is exercised in the worker tests)."""
    ids: list[str] = []
    monkeypatch.setattr(operation_services, "_enqueue", ids.append)
    return ids


# --- GET /operations/{id} -------------------------------------------------------------------


def test_running_operation_is_202_with_location_to_itself(client):
    operation = _operation(OperationStatus.RUNNING, percent_complete=40, results={"studyProcessed": 2})
    response = client.get(f"/v2/operations/{operation.pk.hex}")
    assert response.status_code == 202
    url = f"{settings.DICOM_PUBLIC_BASE_URL}/v2/operations/{operation.pk.hex}"
    assert response["Location"] == url
    body = response.json()
    assert body["operationId"] == operation.pk.hex
    assert body["type"] == "export"
    assert body["status"] == "running"
    assert body["percentComplete"] == 40
    assert body["results"] == {"studyProcessed": 2}
    assert body["createdTime"].endswith("Z") and body["lastUpdatedTime"].endswith("Z")
    assert "resources" not in body  # nulls are omitted


def test_not_started_operation_is_202(client):
    operation = _operation()
    response = client.get(f"/v1/operations/{operation.pk.hex}")
    assert response.status_code == 202
    assert response["Location"] == f"{settings.DICOM_PUBLIC_BASE_URL}/v1/operations/{operation.pk.hex}"
    assert response.json()["status"] == "notStarted"


@pytest.mark.parametrize("status", [OperationStatus.FAILED, OperationStatus.CANCELED])
def test_finished_operation_is_200_without_location(client, status):
    operation = _operation(status, percent_complete=100)
    response = client.get(f"/v2/operations/{operation.pk.hex}")
    assert response.status_code == 200
    assert "Location" not in response
    assert response.json()["status"] == status


@pytest.mark.parametrize(
    ("version", "status"), [("v2", "succeeded"), ("v1", "completed"), ("v1.0-prerelease", "completed")]
)
def test_succeeded_reads_completed_in_v1(client, version, status):
    operation = _operation(OperationStatus.SUCCEEDED, percent_complete=100)
    response = client.get(f"/{version}/operations/{operation.pk.hex}")
    assert response.status_code == 200
    assert response.json()["status"] == status


def test_operation_id_with_dashes_is_accepted(client):
    operation = _operation(OperationStatus.SUCCEEDED)
    assert client.get(f"/v2/operations/{operation.pk}").status_code == 200


def test_unknown_operation_is_404(client):
    unknown = uuid.uuid4().hex
    response = client.get(f"/v2/operations/{unknown}")
    assert response.status_code == 404
    assert unknown in response.content.decode()


def test_malformed_operation_id_is_400(client):
    response = client.get("/v2/operations/not-a-guid")
    assert response.status_code == 400
    assert response.content.decode() == "The operation ID 'not-a-guid' is not a valid GUID."


def test_operations_are_not_served_under_a_partition(client, settings):
    settings.DICOM_ENABLE_DATA_PARTITIONS = True
    operation = _operation(OperationStatus.SUCCEEDED)
    assert client.get(f"/v2/partitions/Microsoft.Default/operations/{operation.pk.hex}").status_code == 404


# --- create and run --------------------------------------------------------------------------


def test_create_commits_the_row_then_enqueues(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks:
        with transaction.atomic():
            operation = operation_create(type=OperationType.EXPORT, partition=None, parameters={"a": 1})
    assert len(callbacks) == 1
    assert isinstance(callbacks[0], partial)
    assert callbacks[0].func is operation_services._enqueue
    assert callbacks[0].args == (str(operation.pk),)
    row = Operation.objects.get(pk=operation.pk)
    assert (row.status, row.parameters, row.percent_complete) == (OperationStatus.NOT_STARTED, {"a": 1}, 0)


def test_one_active_update_is_enforced_by_the_database():
    Operation.objects.create(type=OperationType.UPDATE)
    with pytest.raises(IntegrityError), transaction.atomic():
        Operation.objects.create(type=OperationType.UPDATE)
    Operation.objects.create(type=OperationType.EXPORT)  # other types are not limited


def test_run_starts_runs_and_finishes(export_handler):
    operation = _operation()
    result = operation_run(operation_id=operation.pk)
    assert result.status == OperationStatus.SUCCEEDED and result.retry_in is None
    row = Operation.objects.get(pk=operation.pk)
    assert row.status == OperationStatus.SUCCEEDED
    assert row.percent_complete == 100
    assert row.checkpoint == {"step": 1} and row.results == {"exported": 1}
    assert row.lease is None
    assert len(export_handler) == 1


def test_redelivered_task_of_finished_operation_does_nothing(export_handler):
    operation = _operation()
    operation_run(operation_id=operation.pk)
    before = Operation.objects.get(pk=operation.pk)
    assert operation_run(operation_id=operation.pk).status is None
    after = Operation.objects.get(pk=operation.pk)
    assert len(export_handler) == 1
    assert after.last_updated_time == before.last_updated_time


def test_duplicate_delivery_while_a_live_runner_holds_the_lease_only_watches(export_handler, settings):
    settings.DICOM_OPERATION_LEASE_SECONDS = 300
    holder = uuid.uuid4()
    operation = _operation(OperationStatus.RUNNING, lease=holder, heartbeat_time=timezone.now())
    result = operation_run(operation_id=operation.pk)
    assert result.status is None
    assert 1 < result.retry_in <= 301
    row = Operation.objects.get(pk=operation.pk)
    assert row.lease == holder and row.status == OperationStatus.RUNNING
    assert export_handler == []


def test_stale_lease_is_taken_over_and_the_old_runner_is_fenced_off(export_handler, settings, monkeypatch):
    settings.DICOM_OPERATION_LEASE_SECONDS = 60
    dead = uuid.uuid4()
    operation = _operation(
        OperationStatus.RUNNING, lease=dead, heartbeat_time=timezone.now() - dt.timedelta(seconds=61)
    )
    zombie = OperationRun(operation=Operation.objects.get(pk=operation.pk), lease=dead)
    result = operation_run(operation_id=operation.pk)
    assert result.status == OperationStatus.SUCCEEDED
    assert len(export_handler) == 1 and export_handler[0].lease != dead
    # The presumed-dead runner wakes up: every write it tries is refused.
    awake = time.monotonic() + 3600  # long past its next heartbeat
    with monkeypatch.context() as clock, pytest.raises(LeaseLost):
        clock.setattr(time, "monotonic", lambda: awake)
        zombie.heartbeat()
    with pytest.raises(LeaseLost):
        zombie.progress(percent_complete=10)
    assert Operation.objects.get(pk=operation.pk).percent_complete == 100


def test_handler_exception_fails_the_operation_with_the_error(monkeypatch: pytest.MonkeyPatch):
    def broken(run: OperationRun) -> OperationStatus:
        raise ValueError("tag index is corrupt")

    monkeypatch.setitem(HANDLERS, OperationType.REINDEX, broken)
    operation = Operation.objects.create(type=OperationType.REINDEX)
    assert operation_run(operation_id=operation.pk).status == OperationStatus.FAILED
    row = Operation.objects.get(pk=operation.pk)
    assert row.status == OperationStatus.FAILED
    assert row.errors == ["tag index is corrupt"]
    assert row.lease is None


def test_a_run_that_fails_keeps_its_progress_and_its_json_says_why(monkeypatch: pytest.MonkeyPatch, client):
    def dies_at_40(run: OperationRun) -> OperationStatus:
        run.progress(percent_complete=40, checkpoint={"done": 2}, results={"exported": 2})
        raise OSError("disk full")

    monkeypatch.setitem(HANDLERS, OperationType.EXPORT, dies_at_40)
    operation = _operation()
    assert operation_run(operation_id=operation.pk).status == OperationStatus.FAILED
    body = client.get(f"/v2/operations/{operation.pk.hex}").json()
    assert (body["status"], body["percentComplete"]) == ("failed", 40)  # not a full bar
    assert body["results"] == {"exported": 2, "errors": ["disk full"]}


def test_unknown_id_runs_nothing(export_handler):
    assert operation_run(operation_id=uuid.uuid4()) == RunResult()
    assert export_handler == []


# --- resume ------------------------------------------------------------------------------------


def test_resume_command_enqueues_every_unfinished_operation(enqueued, capsys):
    waiting = _operation()
    running = _operation(OperationStatus.RUNNING, lease=uuid.uuid4(), heartbeat_time=timezone.now())
    _operation(OperationStatus.SUCCEEDED)
    _operation(OperationStatus.FAILED)
    call_command("operations_resume")
    assert enqueued == [str(waiting.pk), str(running.pk)]
    out = capsys.readouterr().out
    assert f"{waiting.pk.hex} export notStarted: enqueued" in out
    assert "2 operation(s) enqueued" in out


def test_resume_command_older_than_skips_recent_operations(enqueued):
    old = _operation()
    Operation.objects.filter(pk=old.pk).update(last_updated_time=timezone.now() - dt.timedelta(minutes=10))
    _operation()
    call_command("operations_resume", "--older-than", "300")
    assert enqueued == [str(old.pk)]


@pytest.mark.django_db(transaction=True)
def test_a_broker_refusing_the_task_leaves_the_operation_queued_not_a_500(client, monkeypatch, caplog):
    from operations.tasks import operation_execute

    def refuse(*args: object) -> None:
        raise ConnectionRefusedError("broker down")

    monkeypatch.setattr(operation_execute, "delay", refuse)
    response = client.post(
        "/v2/studies/$bulkUpdate",
        data={"studyInstanceUids": ["1.2.3"], "changeDataset": {"00100010": {"vr": "PN", "Value": [{"Alphabetic": "A"}]}}},
        format="json",
    )
    assert response.status_code == 202, response.content
    operation = Operation.objects.get(pk=response.json()["id"])
    assert operation.status == OperationStatus.NOT_STARTED
    assert "could not enqueue its task" in caplog.text
