"""QIDO results come from each instance's small search projection when it holds every returned attribute."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import call_command

from studies.models import Instance
from studies.search.attributes import PROJECTION_TAGS
from studies.services import store as store_service
from tests.helpers import add_tags, dicom_bytes, store, tag_entry, tags_ready, uids_of

pytestmark = pytest.mark.django_db
ACCEPT = "application/dicom+json"


def test_stow_stores_the_projection_of_the_metadata(client):
    data = dicom_bytes()
    store(data)
    instance = Instance.objects.get(sop_instance_uid=uids_of(data)[2])
    metadata, projection = json.loads(instance.metadata), json.loads(instance.search_metadata)
    keys = {f"{tag:08X}" for tag in PROJECTION_TAGS}
    assert projection == {key: value for key, value in metadata.items() if key in keys}
    assert "00100010" in projection and "7FE00010" not in projection and "00180050" not in projection


def test_results_are_the_same_from_the_projection_and_from_the_metadata(client):
    data = dicom_bytes()
    store(data)
    study, _series, sop = uids_of(data)
    instance = Instance.objects.get(sop_instance_uid=sop)
    metadata = json.loads(instance.metadata)

    via_projection = client.get(f"/v2/studies?StudyInstanceUID={study}", HTTP_ACCEPT=ACCEPT).json()
    # SliceThickness is not in the projection: the whole metadata is read, and returned.
    via_metadata = client.get(f"/v2/studies?StudyInstanceUID={study}&includefield=00180050", HTTP_ACCEPT=ACCEPT).json()
    assert via_metadata[0].pop("00180050") == metadata["00180050"]
    assert via_projection == via_metadata
    assert via_projection[0]["00100010"] == metadata["00100010"]

    # A row written before the projection existed (empty) is served from its metadata.
    Instance.objects.filter(pk=instance.pk).update(search_metadata="")
    assert client.get(f"/v2/studies?StudyInstanceUID={study}", HTTP_ACCEPT=ACCEPT).json() == via_projection
    everything = client.get(f"/v2/studies?StudyInstanceUID={study}&includefield=all", HTTP_ACCEPT=ACCEPT).json()
    assert everything[0]["00100010"] == metadata["00100010"] and "00080020" in everything[0]
    instances = client.get(f"/v2/instances?SOPInstanceUID={sop}", HTTP_ACCEPT=ACCEPT).json()
    assert instances[0]["00080018"] == metadata["00080018"]


def test_backfill_writes_the_projection_of_rows_stored_without_one(client):
    files = [dicom_bytes() for _ in range(3)]
    store(*files)
    expected = dict(Instance.objects.values_list("pk", "search_metadata"))
    Instance.objects.update(search_metadata="")

    call_command("search_metadata_backfill", "--batch-size", "2", stdout=io.StringIO())

    assert dict(Instance.objects.values_list("pk", "search_metadata")) == expected
    assert all(json.loads(text)["00100010"] for text in expected.values())


def _projection(sop: str) -> dict[str, object]:
    return json.loads(Instance.objects.get(sop_instance_uid=sop).search_metadata)


def _metadata_only(sop: str, key: str, value: str) -> None:
    """Give `key` another value in the instance's metadata only: a result showing it was read from there."""
    instance = Instance.objects.get(sop_instance_uid=sop)
    metadata = json.loads(instance.metadata)
    metadata[key] = {"vr": metadata[key]["vr"], "Value": [value]}
    Instance.objects.filter(pk=instance.pk).update(metadata=json.dumps(metadata))


def test_a_ready_tags_attribute_is_in_every_projection_and_served_from_it(client):
    before = dicom_bytes(BodyPartExamined="CHEST", ProtocolName="LUNG LOW DOSE")
    store(before)
    sop_before = uids_of(before)[2]
    assert "00181030" not in _projection(sop_before)

    tags_ready(client, tag_entry("BodyPartExamined", "series"), tag_entry("ProtocolName", "instance"))
    after = dicom_bytes(BodyPartExamined="CHEST", ProtocolName="LUNG LOW DOSE")
    store(after)
    for sop in (sop_before, uids_of(after)[2]):
        projection = _projection(sop)
        assert projection["00180015"] == {"vr": "CS", "Value": ["CHEST"]}
        assert projection["00181030"] == {"vr": "LO", "Value": ["LUNG LOW DOSE"]}

    _metadata_only(sop_before, "00181030", "FROM METADATA")
    found = client.get(f"/v2/instances?ProtocolName=LUNG*&SOPInstanceUID={sop_before}", HTTP_ACCEPT=ACCEPT).json()
    assert found[0]["00181030"]["Value"] == ["LUNG LOW DOSE"]
    # SliceThickness is in no projection: the whole metadata is read.
    found = client.get(
        f"/v2/instances?ProtocolName=LUNG*&SOPInstanceUID={sop_before}&includefield=00180050", HTTP_ACCEPT=ACCEPT
    ).json()
    assert found[0]["00181030"]["Value"] == ["FROM METADATA"]


def test_a_tag_still_being_added_is_read_from_the_metadata(client):
    data = dicom_bytes(ProtocolName="KNEE")
    store(data)
    sop = uids_of(data)[2]
    assert add_tags(client, tag_entry("ProtocolName", "instance")).status_code == 202  # no reindex yet
    found = client.get(f"/v2/instances?SOPInstanceUID={sop}&includefield=ProtocolName", HTTP_ACCEPT=ACCEPT).json()
    assert found[0]["00181030"] == {"vr": "LO", "Value": ["KNEE"]}


def test_a_store_whose_tag_list_changed_before_its_commit_writes_the_new_projection(client, monkeypatch):
    tags_ready(client, tag_entry("ProtocolName", "instance"))
    core = frozenset(f"{tag:08X}" for tag in PROJECTION_TAGS)
    calls = iter([core])  # the reservation saw no tag; the commit sees ProtocolName's

    def keys() -> frozenset[str]:
        return next(calls, core | {"00181030"})

    monkeypatch.setattr(store_service, "projection_keys", keys)
    data = dicom_bytes(ProtocolName="HEAD")
    store(data)
    assert _projection(uids_of(data)[2])["00181030"] == {"vr": "LO", "Value": ["HEAD"]}
