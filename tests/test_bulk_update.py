"""POST /studies/$bulkUpdate and the update run (task function called directly, no worker)."""

from __future__ import annotations

import datetime as dt
import io
import json
import uuid
from functools import partial

import pytest
from django.conf import settings
from django.utils import timezone
from pydicom.uid import generate_uid

from changefeed.models import ChangeAction, ChangeFeedEntry
from operations import services as operation_services
from operations.models import Operation, OperationStatus, OperationType
from operations.tasks import operation_execute
from studies.blobstore import blob_name, blob_open, blob_write, storage
from studies.dicom.implementation import IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME
from studies.dicom.splice import file_layout
from studies.models import Instance, OrphanBlob, Study
from tests.helpers import (
    blob_bytes,
    multipart_parts,
    patient_name_change,
    read,
    response_bytes,
    start,
    store,
    study_files,
)

pytestmark = pytest.mark.django_db

DICOM_ORIGINAL = 'multipart/related; type="application/dicom"; transfer-syntax=*'


def _run(operation_id: str) -> Operation:
    """What the worker does with the task: the task function, called directly."""
    operation_execute.run(operation_id)
    return Operation.objects.get(pk=operation_id)


def _update(client, uids: list[str], change: dict, **kwargs) -> Operation:
    response = start(client, {"studyInstanceUids": uids, "changeDataset": change}, **kwargs)
    assert response.status_code == 202, response.content
    return _run(response.json()["id"])


def _instances(study_uid: str) -> list[Instance]:
    return list(Instance.objects.filter(study_instance_uid=study_uid).order_by("instance_number"))


def _blob_names(instance: Instance) -> set[str]:
    """Every blob stored under the instance's partition directory for any of its versions."""
    return {name for name in _all_blobs() if name.startswith(f"{instance.partition_id}/")}


def _all_blobs() -> set[str]:
    root = storage()
    names: set[str] = set()
    stack = [""]
    while stack:
        folder = stack.pop()
        dirs, files = root.listdir(folder) if root.exists(folder or ".") else ([], [])
        names.update(f"{folder}/{f}".lstrip("/") for f in files)
        stack.extend(f"{folder}/{d}".lstrip("/") for d in dirs)
    return names


def _retrieve(client, path: str, *, original: bool) -> list[bytes]:
    headers = {"HTTP_ACCEPT": DICOM_ORIGINAL}
    if original:
        headers["HTTP_MSDICOM_REQUEST_ORIGINAL"] = "true"
    response = client.get(path, **headers)
    assert response.status_code == 200, response_bytes(response)
    return [body for _headers, body in multipart_parts(response["Content-Type"], response_bytes(response))]


def _metadata(client, path: str, *, original: bool = False) -> list[dict]:
    headers = {"HTTP_ACCEPT": "application/dicom+json"}
    if original:
        headers["HTTP_MSDICOM_REQUEST_ORIGINAL"] = "true"
    response = client.get(f"{path}/metadata", **headers)
    assert response.status_code == 200
    return json.loads(response.content)


# --- the whole story ---------------------------------------------------------------------------


def test_update_rewrites_every_instance_and_reports_counts(client, django_capture_on_commit_callbacks):
    stored = study_files(3)
    study_uid = store(*stored)[0].study_instance_uid
    with django_capture_on_commit_callbacks() as callbacks:
        response = start(
            client, {"studyInstanceUids": [study_uid], "changeDataset": patient_name_change("Doe^Jane")}
        )
    assert response.status_code == 202
    body = response.json()
    assert body == {"id": body["id"], "href": f"{settings.DICOM_PUBLIC_BASE_URL}/v2/operations/{body['id']}"}
    assert len(body["id"]) == 32
    # Enqueued only once the row is committed, with the operation id.
    assert len(callbacks) == 1 and isinstance(callbacks[0], partial)
    assert callbacks[0].func is operation_services._enqueue and callbacks[0].args == (
        str(Operation.objects.get().pk),
    )
    operation = Operation.objects.get()
    assert (operation.type, operation.status) == (OperationType.UPDATE, OperationStatus.NOT_STARTED)
    assert client.get(f"/v2/operations/{body['id']}").status_code == 202

    operation = _run(body["id"])

    status = client.get(f"/v2/operations/{body['id']}")
    assert status.status_code == 200
    assert status.json()["status"] == "succeeded"
    assert status.json()["percentComplete"] == 100
    assert status.json()["results"] == {
        "studyProcessed": 1, "studyUpdated": 1, "studyFailed": 0, "instanceUpdated": 3,
    }
    assert client.get(f"/v1/operations/{body['id']}").json()["status"] == "completed"

    # QIDO's study columns, the metadata and the file all carry the new name.
    study = Study.objects.get(study_instance_uid=study_uid)
    assert (study.patient_name, study.patient_name_search) == ("Doe^Jane", "doe jane")
    for document in _metadata(client, f"/v2/studies/{study_uid}"):
        assert document["00100010"] == {"vr": "PN", "Value": [{"Alphabetic": "Doe^Jane"}]}
    latest = _retrieve(client, f"/v2/studies/{study_uid}", original=False)
    assert len(latest) == 3
    for data in latest:
        ds = read(data)
        assert str(ds.PatientName) == "Doe^Jane"
        assert ds.file_meta.ImplementationClassUID == IMPLEMENTATION_CLASS_UID
        assert ds.file_meta.ImplementationVersionName == IMPLEMENTATION_VERSION_NAME
    # One change-feed `update` entry per instance, pointing at the new version.
    for instance in _instances(study_uid):
        entries = list(
            ChangeFeedEntry.objects.filter(sop_instance_uid=instance.sop_instance_uid).order_by("sequence")
        )
        assert [e.action for e in entries] == [ChangeAction.CREATE, ChangeAction.UPDATE]
        assert entries[0].watermark == instance.original_watermark  # now `replaced`
        assert entries[1].watermark == instance.watermark  # `current`
        assert instance.new_watermark is None


def test_original_stays_byte_identical_after_one_and_two_updates(client):
    stored = study_files(2)
    study_uid = store(*stored)[0].study_instance_uid
    instances = _instances(study_uid)
    series_uid, sop_uid = instances[0].series_instance_uid, instances[0].sop_instance_uid
    metadata_before = _metadata(client, f"/v2/studies/{study_uid}")
    instance_path = f"/v2/studies/{study_uid}/series/{series_uid}/instances/{sop_uid}"

    _update(client, [study_uid], patient_name_change("First^Update"))
    first = {i.pk: i for i in _instances(study_uid)}
    assert sorted(_retrieve(client, f"/v2/studies/{study_uid}", original=True)) == sorted(stored)
    assert _retrieve(client, instance_path, original=True) == [stored[0]]
    assert _retrieve(client, f"/v2/studies/{study_uid}/series/{series_uid}", original=True) == [stored[0]]
    assert _metadata(client, f"/v2/studies/{study_uid}", original=True) == metadata_before

    operation = _update(client, [study_uid], patient_name_change("Second^Update"))
    assert operation.status == OperationStatus.SUCCEEDED
    assert sorted(_retrieve(client, f"/v2/studies/{study_uid}", original=True)) == sorted(stored)
    assert _metadata(client, f"/v2/studies/{study_uid}", original=True) == metadata_before
    assert str(read(_retrieve(client, instance_path, original=False)[0]).PatientName) == "Second^Update"
    assert _metadata(client, instance_path)[0]["00100010"]["Value"] == [{"Alphabetic": "Second^Update"}]
    for instance in _instances(study_uid):
        # The same original; the first update's version is gone: original + latest only.
        assert instance.original_watermark == first[instance.pk].original_watermark
        assert instance.watermark not in (first[instance.pk].watermark, instance.original_watermark)
        assert _blob_names(instance) >= {
            blob_name(partition_key=instance.partition_id, watermark=instance.original_watermark),
            blob_name(partition_key=instance.partition_id, watermark=instance.watermark),
        }
    assert len(_all_blobs()) == 2 * 2
    assert not OrphanBlob.objects.exists()
    assert ChangeFeedEntry.objects.filter(action=ChangeAction.UPDATE).count() == 4


def test_only_the_changed_attributes_and_file_meta_differ(client):
    """Pixel data and every other element keep their bytes; frames are unchanged."""
    stored = study_files(1, name="MR_small_RLE.dcm")
    study_uid = store(*stored)[0].study_instance_uid
    instance = _instances(study_uid)[0]
    frame_path = (
        f"/v2/studies/{study_uid}/series/{instance.series_instance_uid}/instances/"
        f"{instance.sop_instance_uid}/frames/1"
    )
    frame_accept = 'multipart/related; type="application/octet-stream"; transfer-syntax=*'
    before = client.get(frame_path, HTTP_ACCEPT=frame_accept)
    assert before.status_code == 200
    frame_before = multipart_parts(before["Content-Type"], response_bytes(before))[0][1]
    assert len(frame_before) > 1000
    change = {**patient_name_change("Rle^Patient"), "00081030": {"vr": "LO", "Value": ["Corrected"]}}
    _update(client, [study_uid], change)
    instance.refresh_from_db()
    old, new = stored[0], blob_bytes(instance, instance.watermark)

    old_layout, new_layout = file_layout(io.BytesIO(old)), file_layout(io.BytesIO(new))
    old_spans = {s.tag: old[s.start : s.end] for s in old_layout.dataset}
    new_spans = {s.tag: new[s.start : s.end] for s in new_layout.dataset}
    assert set(old_spans) | {0x00081030} == set(new_spans)
    changed = {tag for tag in new_spans if old_spans.get(tag) != new_spans[tag]}
    assert changed == {0x00100010, 0x00081030}
    assert old_spans[0x7FE00010] == new_spans[0x7FE00010]
    old_meta = {s.tag: old[s.start : s.end] for s in old_layout.meta}
    new_meta = {s.tag: new[s.start : s.end] for s in new_layout.meta}
    assert {t for t in new_meta if old_meta.get(t) != new_meta[t]} == {0x00020000, 0x00020012, 0x00020013}
    ds = read(new)
    assert ds.file_meta.TransferSyntaxUID == read(old).file_meta.TransferSyntaxUID
    assert ds.StudyDescription == "Corrected"
    frame_after = client.get(frame_path, HTTP_ACCEPT=frame_accept)
    assert multipart_parts(frame_after["Content-Type"], response_bytes(frame_after))[0][1] == frame_before
    assert instance.file_size == len(new) and instance.original_file_size == len(old)


def test_study_columns_follow_the_general_study_and_patient_attributes(client):
    study_uid = store(*study_files(2))[0].study_instance_uid
    change = {
        "00100020": {"vr": "LO", "Value": ["NEW-ID-7"]},
        "00100030": {"vr": "DA", "Value": ["19700402"]},
        "00080050": {"vr": "SH", "Value": ["ACC-9"]},
        "00080090": {"vr": "PN", "Value": [{"Alphabetic": "House^Gregory"}]},
        "00081030": {"vr": "LO", "Value": ["Merged record"]},
        "00101030": {"vr": "DS", "Value": [72.5]},
    }
    _update(client, [study_uid], change)
    study = Study.objects.get(study_instance_uid=study_uid)
    assert study.patient_id == "NEW-ID-7"
    assert str(study.patient_birth_date) == "1970-04-02"
    assert study.accession_number == "ACC-9"
    assert (study.referring_physician_name, study.referring_physician_name_search) == ("House^Gregory", "house gregory")
    assert study.study_description == "Merged record"
    for data in _retrieve(client, f"/v2/studies/{study_uid}", original=False):
        ds = read(data)
        assert (ds.PatientID, ds.PatientBirthDate, ds.AccessionNumber) == ("NEW-ID-7", "19700402", "ACC-9")
        assert float(ds.PatientWeight) == 72.5


def test_qido_finds_the_new_value(client):
    study_uid = store(*study_files(1))[0].study_instance_uid
    _update(client, [study_uid], patient_name_change("Searchable^Again"))
    response = client.get("/v2/studies?PatientName=Searchable^Again", HTTP_ACCEPT="application/dicom+json")
    if response.status_code in (404, 405):
        pytest.skip("QIDO-RS is not on this branch yet (issue of another helper); the study row is checked above")
    assert response.status_code == 200
    assert [d["0020000D"]["Value"][0] for d in response.json()] == [study_uid]
    # Fuzzy search reads the word rows, which the update rewrote along with the name they carry.
    fuzzy = client.get("/v2/studies?PatientName=sear+ag&fuzzymatching=true", HTTP_ACCEPT="application/dicom+json")
    assert [d["0020000D"]["Value"][0] for d in fuzzy.json()] == [study_uid]
    old = client.get("/v2/studies?PatientName=compressed+ct&fuzzymatching=true", HTTP_ACCEPT="application/dicom+json")
    assert old.status_code == 204
    # Results are built from the instance's search projection, which the update rewrote too.
    assert response.json()[0]["00100010"]["Value"] == [{"Alphabetic": "Searchable^Again"}]
    instance = Instance.objects.get(study_instance_uid=study_uid)
    assert json.loads(instance.search_metadata)["00100010"] == json.loads(instance.metadata)["00100010"]


# --- outcomes per study --------------------------------------------------------------------


def test_unknown_study_counts_as_processed_and_the_others_complete(client):
    known = store(*study_files(2))[0].study_instance_uid
    unknown = generate_uid()
    operation = _update(client, [unknown, known], patient_name_change("Known^Only"))
    assert operation.status == OperationStatus.SUCCEEDED
    assert operation.results == {"studyProcessed": 2, "studyUpdated": 1, "studyFailed": 0, "instanceUpdated": 2}
    assert operation.percent_complete == 100


def test_study_whose_files_cannot_be_rewritten_is_reported_and_the_others_continue(client):
    broken = store(*study_files(2))[0].study_instance_uid
    healthy = store(*study_files(2))[0].study_instance_uid
    victim = _instances(broken)[1]
    # The latest file of one instance is damaged in storage (truncated inside its pixel data).
    name = blob_name(partition_key=victim.partition_id, watermark=victim.watermark)
    with blob_open(name=name) as fileobj:
        head = fileobj.read()[:-100]
    storage().delete(name)
    storage().save(name, io.BytesIO(head))

    operation = _update(client, [broken, healthy], patient_name_change("Partly^Updated"))

    assert operation.status == OperationStatus.FAILED
    assert operation.results == {
        "studyProcessed": 2, "studyUpdated": 1, "studyFailed": 1, "instanceUpdated": 2,
        "errors": [f"Failed to update instances for study {broken}"],
    }
    status = client.get(f"/v2/operations/{operation.pk.hex}")
    assert status.status_code == 200 and status.json()["status"] == "failed"
    assert status.json()["results"]["errors"] == [f"Failed to update instances for study {broken}"]
    # The failed study is untouched: no new version, no reservation, no stray blob.
    for instance in _instances(broken):
        assert instance.original_watermark is None and instance.new_watermark is None
    assert Study.objects.get(study_instance_uid=broken).patient_name != "Partly^Updated"
    assert all(i.original_watermark is not None for i in _instances(healthy))
    assert len(_all_blobs()) == 2 + 2 * 2
    assert not OrphanBlob.objects.exists()
    assert not ChangeFeedEntry.objects.filter(action=ChangeAction.UPDATE, study_instance_uid=broken).exists()


def test_run_resumed_after_its_worker_died_updates_each_instance_exactly_once(client, settings):
    """The state a killed worker leaves (study A switched, study B half rewritten) is finished by the next run."""
    from operations.services import LeaseLost, OperationRun
    from operations.update.services import _study_update, _switch
    from studies.dicom.changeset import changeset_parse
    from studies.services.study_update import study_update_reserve, study_update_write

    settings.DICOM_OPERATION_LEASE_SECONDS = 30
    studies = [store(*study_files(2))[0].study_instance_uid for _ in range(3)]
    response = start(client, {"studyInstanceUids": studies, "changeDataset": patient_name_change("Once^Only")})
    operation = Operation.objects.get(pk=response.json()["id"])
    dead = uuid.uuid4()
    Operation.objects.filter(pk=operation.pk).update(status=OperationStatus.RUNNING, lease=dead)
    first_run = OperationRun(operation=Operation.objects.get(pk=operation.pk), lease=dead)
    change = changeset_parse(operation.parameters["changeDataset"])
    partition = operation.partition

    _study_update(run=first_run, partition=partition, study_uid=studies[0], index=0, total=3, change=change)
    operation.refresh_from_db()
    assert (operation.checkpoint, operation.percent_complete) == ({"index": 1}, 33)
    assert client.get(f"/v2/operations/{operation.pk.hex}").json()["percentComplete"] == 33
    after_first = {i.pk: i.watermark for i in _instances(studies[0])}
    pending = study_update_reserve(partition=partition, study_uid=studies[1])
    study_update_write(partition=partition, item=pending[0], change=change)
    # ... and the worker dies. Its heartbeat ages past the lease.
    Operation.objects.filter(pk=operation.pk).update(
        heartbeat_time=timezone.now() - dt.timedelta(seconds=31)
    )

    operation = _run(str(operation.pk))

    assert operation.status == OperationStatus.SUCCEEDED
    assert operation.results == {"studyProcessed": 3, "studyUpdated": 3, "studyFailed": 0, "instanceUpdated": 6}
    assert {i.pk: i.watermark for i in _instances(studies[0])} == after_first  # not rewritten again
    for study_uid in studies:
        for instance in _instances(study_uid):
            assert ChangeFeedEntry.objects.filter(
                action=ChangeAction.UPDATE, sop_instance_uid=instance.sop_instance_uid
            ).count() == 1
            assert str(read(blob_bytes(instance, instance.watermark)).PatientName) == "Once^Only"
            assert instance.new_watermark is None and instance.original_watermark is not None
    # The half-done attempt's blob is gone: original + latest per instance, nothing else.
    assert len(_all_blobs()) == 6 * 2
    assert not OrphanBlob.objects.exists()
    # The dead runner, should it wake up, can no longer switch anything.
    with pytest.raises(LeaseLost):
        _switch(run=first_run, partition=partition, study_uid=studies[1], index=1, total=3,
                pending=pending, change=change)


# --- deletes and partitions ------------------------------------------------------------------


def test_delete_after_update_removes_original_and_latest(client):
    study_uid = store(*study_files(2))[0].study_instance_uid
    _update(client, [study_uid], patient_name_change("To^Delete"))
    assert len(_all_blobs()) == 4
    assert client.delete(f"/v2/studies/{study_uid}").status_code == 204
    assert _all_blobs() == set()
    for original in (True, False):
        headers = {"HTTP_ACCEPT": DICOM_ORIGINAL}
        if original:
            headers["HTTP_MSDICOM_REQUEST_ORIGINAL"] = "true"
        assert client.get(f"/v2/studies/{study_uid}", **headers).status_code == 404


def test_update_in_one_partition_never_touches_the_same_uids_in_another(client, settings):
    settings.DICOM_ENABLE_DATA_PARTITIONS = True
    alice_files = study_files(2)
    study_uid = store(*alice_files, partition="alice")[0].study_instance_uid
    store(*study_files(2, study_uid=study_uid), partition="bob")
    operation = _update(client, [study_uid], patient_name_change("Alice^Only"), partition="alice")
    assert operation.results["instanceUpdated"] == 2
    assert operation.partition.partition_name == "alice"
    bob = Instance.objects.filter(partition__partition_name="bob", study_instance_uid=study_uid)
    assert all(i.original_watermark is None for i in bob)
    assert Study.objects.get(partition__partition_name="bob", study_instance_uid=study_uid).patient_name != "Alice^Only"
    bob_docs = _metadata(client, f"/v2/partitions/bob/studies/{study_uid}")
    assert all(d["00100010"]["Value"] != [{"Alphabetic": "Alice^Only"}] for d in bob_docs)
    alice_docs = _metadata(client, f"/v2/partitions/alice/studies/{study_uid}")
    assert all(d["00100010"]["Value"] == [{"Alphabetic": "Alice^Only"}] for d in alice_docs)


def test_partition_route_requires_an_existing_partition(client, settings):
    settings.DICOM_ENABLE_DATA_PARTITIONS = True
    response = start(client, {"studyInstanceUids": [generate_uid()], "changeDataset": patient_name_change("X")},
                     partition="nobody")
    assert response.status_code == 400
    assert not Operation.objects.exists()


def test_value_a_study_files_character_set_cannot_hold_fails_that_study_only(client):
    ascii_only = store(*study_files(1, name="MR_small.dcm"))[0].study_instance_uid  # no Specific Character Set
    latin1 = store(*study_files(1, name="CT_small.dcm"))[0].study_instance_uid  # ISO_IR 100
    operation = _update(client, [ascii_only, latin1], patient_name_change("Müller^Jürgen"))
    assert operation.status == OperationStatus.FAILED
    assert operation.results["errors"] == [f"Failed to update instances for study {ascii_only}"]
    assert operation.results["instanceUpdated"] == 1
    [instance] = _instances(latin1)
    assert str(read(blob_bytes(instance, instance.watermark)).PatientName) == "Müller^Jürgen"


def test_study_deleted_while_its_files_are_rewritten_leaves_no_blob_behind(client, monkeypatch):
    """A DELETE lands while the update's writers run: one writer, which had read its source
    already, writes its new file after the DELETE removed the rows; the others find their
    sources gone and the study fails. No row leads to that file any more: the failed
    attempt's own reservations must."""
    raced = store(*study_files(3))[0].study_instance_uid
    from operations.update import services as update_services

    reserve = update_services.study_update_reserve
    late: list[str] = []

    def reserve_then_delete(*, partition, study_uid):  # noqa: ANN001, ANN202
        pending = reserve(partition=partition, study_uid=study_uid)
        with blob_open(name=blob_name(partition_key=partition.partition_key, watermark=pending[0].watermark)) as f:
            source = f.read()
        assert client.delete(f"/v2/studies/{study_uid}").status_code == 204
        late.append(blob_name(partition_key=partition.partition_key, watermark=pending[0].new_watermark))
        blob_write(name=late[0], stream=io.BytesIO(source), size=len(source))  # the writer in flight
        return pending

    monkeypatch.setattr(update_services, "study_update_reserve", reserve_then_delete)
    operation = _update(client, [raced], patient_name_change("Deleted^Meanwhile"))

    assert operation.status == OperationStatus.FAILED
    assert operation.results["errors"] == [f"Failed to update instances for study {raced}"]
    assert late and not Instance.objects.filter(study_instance_uid=raced).exists()
    assert _all_blobs() == set()  # the late file included
    assert not OrphanBlob.objects.exists()
