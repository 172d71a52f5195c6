"""Data partitions: routing rules, implicit creation, isolation of identical UIDs."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError

from dicomsvc.errors import DataPartitionsFeatureCannotBeDisabledException
from partitions.checks import partitions_guard
from partitions.models import Partition
from studies.models import Instance
from tests.helpers import dicom_bytes, response_bytes, store, stow, uids_of

pytestmark = pytest.mark.django_db

ORIGINAL = "application/dicom; transfer-syntax=*"


def _same_uids_other_name(data: bytes, name: str) -> bytes:
    st, se, sop = uids_of(data)
    return dicom_bytes(PatientName=name, StudyInstanceUID=st, SeriesInstanceUID=se, SOPInstanceUID=sop)


def test_disabled_rejects_partition_routes(client):
    response = stow(client, [dicom_bytes()], url="/v2/partitions/alice/studies")
    assert (response.status_code, response.content.decode()) == (400, "Data partitions feature is disabled.")
    response = client.get("/v2/partitions")
    assert (response.status_code, response.content.decode()) == (400, "Data partitions feature is disabled.")
    assert not Partition.objects.filter(partition_name="alice").exists()


def test_disabled_uses_default_partition(client):
    data = dicom_bytes()
    store(data)
    assert Instance.objects.get(sop_instance_uid=uids_of(data)[2]).partition.partition_name == "Microsoft.Default"


def test_enabled_requires_partition_segment(client, partitions_on):
    response = stow(client, [dicom_bytes()])
    assert (response.status_code, response.content.decode()) == (
        400,
        "PartitionName value is missing in the route segment.",
    )
    response = client.get("/v2/studies/1.2.3/metadata", HTTP_ACCEPT="application/dicom+json")
    assert response.content.decode() == "PartitionName value is missing in the route segment."
    assert not Instance.objects.exists()


def test_enabled_invalid_and_unknown_names(client, partitions_on):
    response = stow(client, [dicom_bytes()], url="/v2/partitions/bad%20name!/studies")
    assert response.status_code == 400
    assert "The specified PartitionName 'bad name!' is invalid." in response.content.decode()
    assert "1 to 64 characters" in response.content.decode()
    response = client.get("/v2/partitions/" + "x" * 65 + "/studies/1.2.3/metadata", HTTP_ACCEPT="*/*")
    assert response.status_code == 400
    response = client.get("/v2/partitions/nobody/studies/1.2.3/metadata", HTTP_ACCEPT="*/*")
    assert (response.status_code, response.content.decode()) == (400, "Specified PartitionName nobody does not exist.")
    assert client.delete("/v2/partitions/nobody/studies/1.2.3").status_code == 400
    assert not Partition.objects.filter(partition_name="nobody").exists()


def test_stow_creates_partition_and_urls_carry_it(client, partitions_on):
    data = dicom_bytes()
    st, se, sop = uids_of(data)
    response = stow(client, [data], url="/v2/partitions/site-A.1_x/studies")
    assert response.status_code == 200
    url = response.json()["00081199"]["Value"][0]["00081190"]["Value"][0]
    assert url == f"http://127.0.0.1:8000/v2/partitions/site-A.1_x/studies/{st}/series/{se}/instances/{sop}"
    listing = client.get("/v2/partitions").json()
    assert [p["partitionName"] for p in listing] == ["Microsoft.Default", "site-A.1_x"]
    assert listing[0]["partitionKey"] == 1
    assert listing[1]["createdDate"].endswith("Z")


def test_same_uids_in_two_partitions_are_independent(client, partitions_on):
    alice = dicom_bytes(PatientName="Alice^Site")
    bob = _same_uids_other_name(alice, "Bob^Site")
    st, se, sop = uids_of(alice)
    assert stow(client, [alice], url="/v2/partitions/alice/studies").status_code == 200
    assert stow(client, [bob], url="/v2/partitions/bob/studies").status_code == 200

    path = f"studies/{st}/series/{se}/instances/{sop}"
    assert response_bytes(client.get(f"/v2/partitions/alice/{path}", HTTP_ACCEPT=ORIGINAL)) == alice
    assert response_bytes(client.get(f"/v2/partitions/bob/{path}", HTTP_ACCEPT=ORIGINAL)) == bob
    meta = client.get(f"/v2/partitions/bob/{path}/metadata", HTTP_ACCEPT="application/dicom+json").json()
    assert meta[0]["00100010"]["Value"] == [{"Alphabetic": "Bob^Site"}]

    assert client.delete(f"/v2/partitions/alice/studies/{st}").status_code == 204
    assert client.get(f"/v2/partitions/alice/{path}", HTTP_ACCEPT=ORIGINAL).status_code == 404
    assert response_bytes(client.get(f"/v2/partitions/bob/{path}", HTTP_ACCEPT=ORIGINAL)) == bob
    # Storing alice's copy again works: the UIDs are free in her partition only.
    assert stow(client, [alice], url="/v2/partitions/alice/studies").status_code == 200
    assert stow(client, [bob], url="/v2/partitions/bob/studies").status_code == 409


def test_startup_guard_when_disabled_with_partitioned_data(settings):
    Partition.objects.create(partition_name="charlie")
    settings.DICOM_ENABLE_DATA_PARTITIONS = False
    with pytest.raises(DataPartitionsFeatureCannotBeDisabledException) as caught:
        partitions_guard()
    assert "cannot be disabled" in str(caught.value)
    with pytest.raises(SystemCheckError) as check:
        call_command("check")
    assert "partitions.E001" in str(check.value)
    settings.DICOM_ENABLE_DATA_PARTITIONS = True
    partitions_guard()


def test_default_partition_exists_after_migrate():
    default = Partition.objects.get(partition_key=1)
    assert default.partition_name == "Microsoft.Default"
    created = Partition.objects.create(partition_name="next")
    assert created.partition_key > 1
