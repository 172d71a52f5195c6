"""DELETE: rows, change feed and blobs; then 404; re-store after delete."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydicom.uid import generate_uid

from changefeed.models import ChangeAction, ChangeFeedEntry
from studies.blobstore import blob_name, storage
from studies.models import Instance, OrphanBlob, Series, Study
from tests.helpers import dicom_bytes, instance_url, response_bytes, store, uids_of

pytestmark = pytest.mark.django_db


def _blob(instance: Instance) -> str:
    return blob_name(partition_key=instance.partition_id, watermark=instance.watermark)


def test_delete_instance_removes_row_blob_and_writes_feed(client):
    study = generate_uid()
    keep, gone = dicom_bytes(StudyInstanceUID=study), dicom_bytes(StudyInstanceUID=study)
    store(keep, gone)
    gone_row = Instance.objects.get(sop_instance_uid=uids_of(gone)[2])
    name = _blob(gone_row)
    assert storage().exists(name)

    response = client.delete(instance_url(gone))

    assert response.status_code == 204
    assert response.content == b""
    assert not Instance.objects.filter(pk=gone_row.pk).exists()
    assert not storage().exists(name)
    entry = ChangeFeedEntry.objects.filter(sop_instance_uid=uids_of(gone)[2]).order_by("-sequence").first()
    assert (entry.action, entry.watermark) == (ChangeAction.DELETE, gone_row.watermark)
    row = Study.objects.get(study_instance_uid=study)
    assert (row.num_instances, row.num_series) == (1, 1)
    assert not Series.objects.filter(series_instance_uid=uids_of(gone)[1]).exists()
    assert client.delete(instance_url(gone)).status_code == 404
    assert response_bytes(client.get(instance_url(keep), HTTP_ACCEPT="application/dicom; transfer-syntax=*")) == keep


def test_delete_series_and_study(client):
    study, series = generate_uid(), generate_uid()
    parts = [dicom_bytes(StudyInstanceUID=study, SeriesInstanceUID=series) for _ in range(2)]
    other = dicom_bytes(StudyInstanceUID=study)
    store(*parts, other)

    assert client.delete(f"/v2/studies/{study}/series/{series}").status_code == 204
    assert Instance.objects.filter(study_instance_uid=study).count() == 1
    assert ChangeFeedEntry.objects.filter(series_instance_uid=series, action=ChangeAction.DELETE).count() == 2
    response = client.delete(f"/v2/studies/{study}/series/{series}")
    assert (response.status_code, response.content.decode()) == (404, "The specified series cannot be found.")

    assert client.delete(f"/v2/studies/{study}").status_code == 204
    assert not Study.objects.filter(study_instance_uid=study).exists()
    assert not Instance.objects.exists()
    assert list(Path(storage().location).rglob("*.dcm")) == []
    response = client.delete(f"/v2/studies/{study}")
    assert (response.status_code, response.content.decode()) == (404, "The specified study cannot be found.")
    response = client.get(f"/v2/studies/{study}/metadata", HTTP_ACCEPT="application/dicom+json")
    assert response.status_code == 404


def test_delete_malformed_uid_is_400(client):
    response = client.delete("/v2/studies/1.2.3.x")
    assert response.status_code == 400
    assert "is not a valid DICOM UID" in response.content.decode()


def test_delete_then_restore(client):
    data = dicom_bytes(PatientName="Again^Stored")
    store(data)
    assert client.delete(f"/v2/studies/{uids_of(data)[0]}").status_code == 204
    store(data)
    assert response_bytes(client.get(instance_url(data), HTTP_ACCEPT="application/dicom; transfer-syntax=*")) == data
    actions = list(
        ChangeFeedEntry.objects.filter(sop_instance_uid=uids_of(data)[2]).order_by("sequence").values_list("action", flat=True)
    )
    assert actions == [ChangeAction.CREATE, ChangeAction.DELETE, ChangeAction.CREATE]


def test_blob_removal_failure_is_queued_not_lost(client, monkeypatch):
    data = dicom_bytes()
    store(data)
    instance = Instance.objects.get(sop_instance_uid=uids_of(data)[2])
    name = _blob(instance)

    def refuse(self, name):  # noqa: ANN001
        raise OSError("storage unavailable")

    monkeypatch.setattr(type(storage()), "delete", refuse)
    assert client.delete(instance_url(data)).status_code == 204
    assert not Instance.objects.filter(pk=instance.pk).exists()
    assert OrphanBlob.objects.filter(blob_name=name).exists()
    monkeypatch.undo()

    from django.core.management import call_command

    call_command("dicom_cleanup")
    assert not storage().exists(name)
    assert not OrphanBlob.objects.exists()


def test_delete_recounts_the_study_as_the_store_counts_it(client):
    study, ct, mr = generate_uid(), generate_uid(), generate_uid()
    cts = [dicom_bytes(StudyInstanceUID=study, SeriesInstanceUID=ct, Modality="CT") for _ in range(2)]
    mrs = [dicom_bytes(StudyInstanceUID=study, SeriesInstanceUID=mr, Modality="MR") for _ in range(2)]
    store(*cts, *mrs)
    row = Study.objects.get(study_instance_uid=study)
    assert (row.num_series, row.num_instances, row.modalities_in_study) == (2, 4, "CT\\MR")

    assert client.delete(instance_url(cts[0])).status_code == 204
    row.refresh_from_db()
    assert (row.num_series, row.num_instances, row.modalities_in_study) == (2, 3, "CT\\MR")
    assert Series.objects.get(series_instance_uid=ct).num_instances == 1

    assert client.delete(instance_url(cts[1])).status_code == 204
    row.refresh_from_db()
    assert (row.num_series, row.num_instances, row.modalities_in_study) == (1, 2, "MR")
    assert not Series.objects.filter(series_instance_uid=ct).exists()
