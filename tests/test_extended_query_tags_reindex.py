"""The reindex operation: batches, progress, resuming after a killed worker, errors, and rows
still being stored while it runs."""

from __future__ import annotations

import datetime as dt
import json
from types import SimpleNamespace

import pytest
from django.db import transaction
from django.test import override_settings
from django.utils import timezone

from operations.models import Operation, OperationSlice, OperationStatus
from operations.reindex import services as reindex_services
from operations.runner import operation_run
from operations.tasks import operation_help
from studies.eqt.models import ExtendedQueryTag, ExtendedQueryTagError, ExtendedQueryTagValue
from studies.eqt.reindex import reindex_pending, reindex_tags
from studies.models import Instance, InstanceStatus
from tests.helpers import (
    WorkerKilled,
    add_tags,
    creating_instance,
    dicom_bytes,
    reindex,
    results,
    search,
    store,
    stow,
    tag_entry,
)

pytestmark = pytest.mark.django_db

BASE = "http://127.0.0.1:8000"


def test_a_worker_killed_mid_reindex_is_taken_over_and_every_instance_indexed_once(client, monkeypatch) -> None:  # noqa: ANN001
    rows = store(*(dicom_bytes(BodyPartExamined=f"PART{n}") for n in range(5)))
    response = add_tags(client, tag_entry("BodyPartExamined", "instance"))
    real_batch = reindex_services.reindex_batch
    starts: list[int] = []

    def dies_in_second_batch(**kwargs):  # noqa: ANN003, ANN202
        starts.append(kwargs["after"])
        result = real_batch(**kwargs)  # its values are written, then the worker dies before commit
        if len(starts) == 2:
            raise WorkerKilled()
        return result

    monkeypatch.setattr(reindex_services, "reindex_batch", dies_in_second_batch)
    with override_settings(DICOM_REINDEX_BATCH_SIZE=2), pytest.raises(WorkerKilled):
        reindex(response)
    operation = Operation.objects.get(pk=response.json()["id"])
    assert operation.status == OperationStatus.RUNNING
    assert operation.percent_complete == 40
    (piece,) = OperationSlice.objects.filter(operation=operation)  # five instances: one slice
    assert (piece.after, piece.done, piece.finished) == (rows[1].watermark, 2, False)
    assert ExtendedQueryTagValue.objects.count() == 2  # the second batch rolled back with the slice's progress

    monkeypatch.setattr(reindex_services, "reindex_batch", real_batch)
    Operation.objects.filter(pk=operation.pk).update(heartbeat_time=timezone.now() - dt.timedelta(hours=1))
    with override_settings(DICOM_REINDEX_BATCH_SIZE=2):
        operation = reindex(response)
    assert (operation.status, operation.percent_complete) == (OperationStatus.SUCCEEDED, 100)
    assert operation.checkpoint["done"] == 5
    values = ExtendedQueryTagValue.objects.order_by("instance_id")
    assert [(value.instance_id, value.text_value) for value in values] == [
        (row.pk, f"PART{n}") for n, row in enumerate(rows)
    ]
    assert ExtendedQueryTag.objects.get().status == "ready"
    assert len(results(search(client, "instances", {"BodyPartExamined": "PART3"}))) == 1


def test_a_second_delivery_while_the_runner_lives_does_nothing(client) -> None:  # noqa: ANN001
    store(dicom_bytes(BodyPartExamined="CHEST"))
    response = add_tags(client, tag_entry("BodyPartExamined", "instance"))
    Operation.objects.filter(pk=response.json()["id"]).update(
        status=OperationStatus.RUNNING, heartbeat_time=timezone.now()
    )
    operation = reindex(response)
    assert operation.status == OperationStatus.RUNNING
    assert not ExtendedQueryTagValue.objects.exists()


def test_an_unindexable_value_is_an_error_and_disables_the_tag(client) -> None:  # noqa: ANN001
    # v1 STOW keeps a value it does not index; the tag added later cannot index it.
    bad = dicom_bytes(BodyPartExamined="chest", SeriesNumber="7")
    assert stow(client, [bad], url="/v1/studies").status_code == 200
    (good,) = store(dicom_bytes(BodyPartExamined="HEAD", SeriesNumber="7"))
    operation = reindex(add_tags(client, tag_entry("BodyPartExamined", "instance"), tag_entry("SeriesNumber", "study")))
    assert operation.status == OperationStatus.SUCCEEDED
    tag = client.get("/v2/extendedquerytags/BodyPartExamined").json()
    assert tag == {
        "path": "00180015", "vr": "CS", "level": "instance", "status": "ready", "queryStatus": "disabled",
        "errors": {"count": 1, "href": f"{BASE}/v2/extendedquerytags/00180015/errors"},
    }
    bad_row = Instance.objects.exclude(pk=good.pk).get()
    errors = client.get("/v2/extendedquerytags/00180015/errors").json()
    assert len(errors) == 1
    assert errors[0] | {"createdTime": None} == {
        "partitionName": "Microsoft.Default",
        "studyInstanceUid": bad_row.study_instance_uid,
        "seriesInstanceUid": bad_row.series_instance_uid,
        "sopInstanceUid": bad_row.sop_instance_uid,
        "createdTime": None,
        "errorMessage": "Value contains invalid character.",
    }
    assert errors[0]["createdTime"].endswith("Z")
    assert client.get("/v2/extendedquerytags/00180015/errors", {"offset": 1}).json() == []
    # The other tag is fine; the disabled one answers Microsoft's message until enabled again.
    assert len(results(search(client, "studies", {"SeriesNumber": "7"}))) == 2
    refused = search(client, "instances", {"BodyPartExamined": "HEAD"})
    assert refused.content.decode() == "Query is disabled on specified attribute 'BodyPartExamined'."
    client.patch("/v2/extendedquerytags/00180015", data={"queryStatus": "Enabled"}, format="json")
    response = search(client, "instances", {"BodyPartExamined": "HEAD"})
    assert len(results(response)) == 1
    assert response["erroneous-dicom-attributes"] == "BodyPartExamined"
    assert "erroneous-dicom-attributes" not in search(client, "studies", {"SeriesNumber": "7"})


def test_deleting_an_instance_removes_its_errors(client) -> None:  # noqa: ANN001
    bad = dicom_bytes(BodyPartExamined="chest")
    stow(client, [bad], url="/v1/studies")
    reindex(add_tags(client, tag_entry("BodyPartExamined", "instance")))
    assert ExtendedQueryTagError.objects.count() == 1
    row = Instance.objects.get()
    assert client.delete(f"/v2/studies/{row.study_instance_uid}").status_code == 204
    assert not ExtendedQueryTagError.objects.exists()


def test_a_row_being_stored_is_indexed_once_its_store_commits(client) -> None:  # noqa: ANN001
    response = add_tags(client, tag_entry("BodyPartExamined", "instance"))
    tags = reindex_tags(keys=Operation.objects.get(pk=response.json()["id"]).parameters["tagKeys"])
    row = creating_instance(dicom_bytes(), watermark=10**9)
    with transaction.atomic():
        assert reindex_pending(tags=tags, watermarks=[row.watermark]) == [row.watermark]
    metadata = {"00180015": {"vr": "CS", "Value": ["CHEST"]}}
    Instance.objects.filter(pk=row.pk).update(status=InstanceStatus.CREATED, metadata=json.dumps(metadata))
    with transaction.atomic():
        assert reindex_pending(tags=tags, watermarks=[row.watermark]) == []
    assert ExtendedQueryTagValue.objects.get().text_value == "CHEST"


def test_a_stale_row_left_by_a_crashed_store_does_not_hold_the_reindex(client) -> None:  # noqa: ANN001
    store(dicom_bytes(BodyPartExamined="CHEST"))
    row = creating_instance(dicom_bytes(), watermark=10**9)
    Instance.objects.filter(pk=row.pk).update(created_at=timezone.now() - dt.timedelta(days=1))
    operation = reindex(add_tags(client, tag_entry("BodyPartExamined", "instance")))
    assert operation.status == OperationStatus.SUCCEEDED
    assert operation.checkpoint["creating"] == []
    assert ExtendedQueryTagValue.objects.count() == 1


def test_the_reindex_waits_for_other_processes_tag_caches(client, monkeypatch) -> None:  # noqa: ANN001
    """Another process may store without the new tag for one cache lifetime: no ready before it has passed."""
    response = add_tags(client, tag_entry("BodyPartExamined", "instance"))
    slept: list[float] = []

    class Clock:
        """`timezone` as the reindex sees it: each of its sleeps lets 30 s pass."""

        @staticmethod
        def now() -> dt.datetime:
            return timezone.now() + dt.timedelta(seconds=30 * len(slept))

    monkeypatch.setattr(reindex_services, "timezone", Clock)
    monkeypatch.setattr(reindex_services, "time", SimpleNamespace(sleep=slept.append))
    with override_settings(DICOM_EXTENDED_QUERY_TAG_CACHE_MS=60_000):
        operation_run(operation_id=response.json()["id"])
    assert len(slept) == 4  # ready only 2 x 60 s after the tag was added
    assert Operation.objects.get(pk=response.json()["id"]).status == OperationStatus.SUCCEEDED


def test_helpers_index_slices_beside_the_runner(client, monkeypatch, django_capture_on_commit_callbacks) -> None:  # noqa: ANN001
    rows = store(*(dicom_bytes(BodyPartExamined=f"PART{n}") for n in range(12)))
    response = add_tags(client, tag_entry("BodyPartExamined", "instance"))
    real_batch = reindex_services.reindex_batch

    def dies(**kwargs):  # noqa: ANN003, ANN202
        raise WorkerKilled()

    # The runner splits the work, asks for a helper, and dies at its first batch.
    monkeypatch.setattr(reindex_services, "reindex_batch", dies)
    with override_settings(DICOM_REINDEX_BATCH_SIZE=1), django_capture_on_commit_callbacks() as callbacks:
        with pytest.raises(WorkerKilled):
            reindex(response)
    operation_id = response.json()["id"]
    slices = OperationSlice.objects.filter(operation_id=operation_id)
    assert slices.count() == 3  # 12 instances, batches of one, at least four batches a slice
    assert [(s.after, s.end) for s in slices] == [
        (rows[0].watermark - 1, rows[3].watermark), (rows[3].watermark, rows[7].watermark),
        (rows[7].watermark, rows[11].watermark),
    ]
    assert [callback.args for callback in callbacks if getattr(callback, "func", None)
            is reindex_services._enqueue_helpers] == [(operation_id,)]

    # A helper (another worker) takes the slices; the runner taken over finds them done.
    monkeypatch.setattr(reindex_services, "reindex_batch", real_batch)
    with override_settings(DICOM_REINDEX_BATCH_SIZE=1):
        operation_help.run(operation_id)
    assert all(piece.finished for piece in slices.all())
    assert sum(piece.done for piece in slices.all()) == 12
    Operation.objects.filter(pk=operation_id).update(heartbeat_time=timezone.now() - dt.timedelta(hours=1))
    operation = reindex(response)
    assert (operation.status, operation.checkpoint["done"]) == (OperationStatus.SUCCEEDED, 12)
    assert sorted(ExtendedQueryTagValue.objects.values_list("instance_id", flat=True)) == [row.pk for row in rows]
    operation_help.run(operation_id)  # a late helper: nothing left, nothing written
    assert ExtendedQueryTagValue.objects.count() == 12


def test_a_broker_refusing_the_helpers_leaves_the_runner_to_do_it_all(client, monkeypatch) -> None:  # noqa: ANN001
    store(dicom_bytes(BodyPartExamined="CHEST"))
    response = add_tags(client, tag_entry("BodyPartExamined", "instance"))

    def refuse(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        raise ConnectionError("broker down")

    monkeypatch.setattr(operation_help, "delay", refuse)
    reindex_services._enqueue_helpers(response.json()["id"])  # logged, not raised
    operation = reindex(response)
    assert operation.status == OperationStatus.SUCCEEDED
    assert ExtendedQueryTagValue.objects.count() == 1
