"""Crash and race safety of the store path: nothing half-visible, nothing stored twice."""

from __future__ import annotations

import datetime as dt
import io
import threading
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from changefeed.models import ChangeFeedEntry
from partitions.services import partition_default
from studies.blobstore import blob_name, storage
from studies.dicom.streams import FileSlice
from studies.models import Instance, InstanceStatus, OrphanBlob, Study
from studies.services import store as store_module
from studies.services.stow import stow_process
from tests.helpers import creating_instance, dicom_bytes, instance_url, response_bytes, stow, uids_of


def _blobs() -> list[Path]:
    return list(Path(storage().location).rglob("*.dcm"))


@pytest.mark.django_db
def test_failure_after_blob_write_leaves_nothing_visible(client, monkeypatch):
    data = dicom_bytes()
    real_run = store_module.statements_run

    def crash(statements):  # noqa: ANN001
        if any("changefeed" in sql for sql, _params in statements):  # the commit step, not the reservation
            raise RuntimeError("simulated crash before the commit's statements ran")
        return real_run(statements)

    monkeypatch.setattr(store_module, "statements_run", crash)
    response = stow(client, [data])

    assert response.status_code == 409
    assert response.json()["00081198"]["Value"][0]["00081197"]["Value"] == [272]
    assert not Instance.objects.exists()
    assert not ChangeFeedEntry.objects.exists()
    assert _blobs() == []
    assert not Study.objects.filter(num_instances__gt=0).exists()
    monkeypatch.undo()
    assert stow(client, [data]).status_code == 200


@pytest.mark.django_db
def test_failure_inside_commit_rolls_back_feed_and_counters(client, monkeypatch):
    data = dicom_bytes()

    real_run = store_module.statements_run
    ran = []

    def broken(statements):  # noqa: ANN001
        results = real_run(statements)
        if any("changefeed" in sql for sql, _params in statements):  # the commit step, not the reservation
            ran.append(results)  # every statement of the commit ran, then it fails
            raise RuntimeError("connection lost before COMMIT")
        return results

    monkeypatch.setattr(store_module, "statements_run", broken)
    response = stow(client, [data])
    assert ran and ran[0][0], "the flip ran inside the failed transaction"
    assert response.status_code == 409
    assert not ChangeFeedEntry.objects.exists()
    assert not Instance.objects.exists()
    study = Study.objects.filter(study_instance_uid=uids_of(data)[0]).first()
    assert study is None or study.num_instances == 0
    assert _blobs() == []


@pytest.mark.django_db
def test_crashed_request_row_blocks_then_is_taken_over_when_stale(client, settings):
    data = dicom_bytes()
    sop = uids_of(data)[2]
    crashed = creating_instance(data, watermark=10**12)
    storage().save(blob_name(partition_key=1, watermark=crashed.watermark), io.BytesIO(b"partial"))

    response = stow(client, [data])
    assert response.json()["00081198"]["Value"][0]["00081197"]["Value"] == [45071]
    assert client.get(instance_url(data), HTTP_ACCEPT="*/*").status_code == 404  # never visible

    Instance.objects.filter(pk=crashed.pk).update(created_at=timezone.now() - dt.timedelta(hours=1))
    assert stow(client, [data]).status_code == 200
    assert response_bytes(client.get(instance_url(data), HTTP_ACCEPT="application/dicom; transfer-syntax=*")) == data
    assert not storage().exists(blob_name(partition_key=1, watermark=crashed.watermark))
    assert Instance.objects.get(sop_instance_uid=sop).status == InstanceStatus.CREATED


@pytest.mark.django_db
def test_cleanup_command_removes_stale_creating_rows(settings):
    data = dicom_bytes()
    row = creating_instance(data, watermark=10**12 + 1)
    call_command("dicom_cleanup")
    assert Instance.objects.filter(pk=row.pk).exists()  # fresh: its request may still be running
    Instance.objects.filter(pk=row.pk).update(created_at=timezone.now() - dt.timedelta(hours=1))
    call_command("dicom_cleanup")
    assert not Instance.objects.filter(pk=row.pk).exists()


@pytest.mark.django_db(transaction=True)
def test_concurrent_stows_of_one_instance_store_it_once():
    data = dicom_bytes()
    partition = partition_default()
    barrier = threading.Barrier(2)
    results: list[int | None] = []
    errors: list[BaseException] = []

    def worker() -> None:
        import io

        try:
            barrier.wait()
            body = io.BytesIO(data)
            result = stow_process(
                parts=[FileSlice(body, 0, len(data))], partition=partition, study_uid=None, api_version=2
            )
            results.append(result.outcomes[0].failure_reason)
        except BaseException as exc:  # surfaced below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert not errors, errors
    assert sorted(results, key=lambda r: r or 0) == [None, results[0] or results[1]]
    assert {r for r in results if r is not None} <= {45070, 45071}
    sop = uids_of(data)[2]
    assert Instance.objects.filter(sop_instance_uid=sop).count() == 1
    assert Instance.objects.get(sop_instance_uid=sop).status == InstanceStatus.CREATED
    assert ChangeFeedEntry.objects.filter(sop_instance_uid=sop).count() == 1
    assert len(_blobs()) == 1


def test_blob_write_refuses_an_existing_file_and_leaves_it_alone():
    from studies.blobstore import blob_write

    name = blob_name(partition_key=1, watermark=987654321)
    blob_write(name=name, stream=io.BytesIO(b"first"), size=5)
    path = Path(storage().path(name))
    assert path.read_bytes() == b"first"
    with pytest.raises(OSError, match="already exists"):
        blob_write(name=name, stream=io.BytesIO(b"second"), size=6)
    assert path.read_bytes() == b"first"


def test_blob_write_failing_midway_leaves_no_file():
    from studies.blobstore import blob_write

    class Broken(io.BytesIO):
        def read(self, size: int = -1) -> bytes:
            if self.tell() > 0:
                raise OSError("disk went away")
            return super().read(4)

    name = blob_name(partition_key=1, watermark=987654322)
    with pytest.raises(OSError, match="disk went away"):
        blob_write(name=name, stream=Broken(b"0123456789"), size=10)
    assert not Path(storage().path(name)).exists()


@pytest.mark.django_db
def test_a_row_taken_over_before_the_commit_fails_alone_and_counts_stay_exact(client, monkeypatch):
    _a_row_taken_over_before_the_commit(client, monkeypatch)


@pytest.mark.django_db(transaction=True)
def test_a_row_taken_over_before_a_commit_in_one_round_trip_fails_alone(client, monkeypatch, caplog):
    # Outside a test's transaction PostgreSQL commits in one round trip (`statements_commit`): the
    # transaction's own guard fails it, and the commit runs again the careful way.
    _a_row_taken_over_before_the_commit(client, monkeypatch)
    guarded = [r for r in caplog.records if "taken over before its commit" in r.getMessage()]
    assert len(guarded) == (1 if connection.vendor == "postgresql" else 0)


def _a_row_taken_over_before_the_commit(client, monkeypatch) -> None:  # noqa: ANN001
    first = dicom_bytes()
    st, se, _ = uids_of(first)
    second = dicom_bytes(StudyInstanceUID=st, SeriesInstanceUID=se)
    _, _, lost_sop = uids_of(second)
    real_write = type(storage()).write_new
    written = []

    def taken_over_after_the_blobs(self, name, stream):  # noqa: ANN001
        real_write(self, name, stream)
        written.append(name)
        if len(written) == 2:
            # What a stale takeover does to a slow request's reservation between its blob
            # writes and its commit: its row is removed.
            Instance.objects.filter(sop_instance_uid=lost_sop, status=InstanceStatus.CREATING).delete()

    monkeypatch.setattr(type(storage()), "write_new", taken_over_after_the_blobs)
    response = stow(client, [first, second])

    assert response.status_code == 202
    failed = response.json()["00081198"]["Value"]
    assert [(f["00081155"]["Value"], f["00081197"]["Value"]) for f in failed] == [([lost_sop], [272])]
    assert list(Instance.objects.values_list("sop_instance_uid", "status")) == [
        (uids_of(first)[2], InstanceStatus.CREATED)
    ]
    study = Study.objects.get(study_instance_uid=st)
    assert (study.num_instances, study.num_series) == (1, 1)  # the rolled-back first try left no trace
    assert study.series.get().num_instances == 1
    assert list(ChangeFeedEntry.objects.values_list("sop_instance_uid", flat=True)) == [uids_of(first)[2]]
    assert len(_blobs()) == 1


@pytest.mark.django_db
def test_cleanup_keeps_what_the_store_refuses_to_remove_queued(monkeypatch):
    data = dicom_bytes()
    row = creating_instance(data, watermark=10**12 + 2)
    Instance.objects.filter(pk=row.pk).update(created_at=timezone.now() - dt.timedelta(hours=1))
    stale = blob_name(partition_key=1, watermark=row.watermark)
    storage().save(stale, io.BytesIO(b"partial"))
    OrphanBlob.objects.create(blob_name="1/abc/42.dcm", reason="delete: blob removal failed")

    def refuse(self, name):  # noqa: ANN001
        raise OSError("storage unavailable")

    monkeypatch.setattr(type(storage()), "delete", refuse)
    call_command("dicom_cleanup", stdout=io.StringIO())
    assert not Instance.objects.filter(pk=row.pk).exists()
    assert set(OrphanBlob.objects.values_list("blob_name", flat=True)) == {"1/abc/42.dcm", stale}

    monkeypatch.undo()
    call_command("dicom_cleanup", stdout=io.StringIO())
    assert not storage().exists(stale)
    assert not OrphanBlob.objects.exists()
