"""Sequences nested past MAX_SEQUENCE_DEPTH: that instance fails with 272, the others are stored.

A file nesting 330-480 levels once passed the header reader and hit Python's recursion limit
while its row was built, outside the per-part handling: the whole request answered 500."""

from __future__ import annotations

import io

import pytest
from pydicom.uid import generate_uid

from studies.dicom.elements import MAX_SEQUENCE_DEPTH
from studies.dicom.splice import MalformedFile, file_layout
from studies.models import Instance
from tests.helpers import DICOM_JSON, dicom_bytes, instance_url, nested_bytes, stow, uids_of

pytestmark = pytest.mark.django_db

FAILED_SOP_SEQUENCE = "00081198"
REFERENCED_SOP_SEQUENCE = "00081199"


def _failures(response) -> dict[str, tuple[int, str]]:
    out = {}
    for item in response.json().get(FAILED_SOP_SEQUENCE, {}).get("Value", []):
        comments = [c["00000902"]["Value"][0] for c in item.get("00741048", {}).get("Value", [])]
        out[item["00081155"]["Value"][0] if "00081155" in item else ""] = (item["00081197"]["Value"][0], " ".join(comments))
    return out


@pytest.mark.parametrize("name", ["CT_small.dcm", "MR_small_bigendian.dcm", "MR_small_implicit.dcm"])
@pytest.mark.parametrize("depth", [MAX_SEQUENCE_DEPTH + 1, 350, 450])
def test_too_deep_fails_its_instance_only(client, name, depth):
    study = generate_uid()
    deep = nested_bytes(depth, name, StudyInstanceUID=study)  # too deep for pydicom to read back
    good = dicom_bytes()
    response = stow(client, [good, deep, dicom_bytes()])
    assert response.status_code == 202, response.content
    failures = _failures(response)
    assert list(failures) == [""]  # the UIDs come from the reader, which refused the file
    reason, comment = failures[""]
    assert reason == 272
    assert comment == f"The DICOM instance is invalid: its sequences are nested more than {MAX_SEQUENCE_DEPTH} levels deep."
    assert len(response.json()[REFERENCED_SOP_SEQUENCE]["Value"]) == 2
    assert Instance.objects.filter(sop_instance_uid=uids_of(good)[2]).exists()
    assert not Instance.objects.filter(study_instance_uid=study).exists()


@pytest.mark.parametrize("name", ["CT_small.dcm", "MR_small_bigendian.dcm"])
def test_deepest_allowed_nesting_is_stored_and_served(client, name):
    data = nested_bytes(MAX_SEQUENCE_DEPTH, name)
    response = stow(client, [data])
    assert response.status_code == 200, response.content
    metadata = client.get(f"{instance_url(data)}/metadata", HTTP_ACCEPT=DICOM_JSON).json()[0]
    level, depth = metadata, 0
    while "0040A730" in level:
        items = level["0040A730"].get("Value", [{}])
        level, depth = items[0], depth + 1
    assert depth == MAX_SEQUENCE_DEPTH


def test_the_bulk_update_scan_refuses_the_same_depth():
    assert file_layout(io.BytesIO(nested_bytes(MAX_SEQUENCE_DEPTH))).dataset
    with pytest.raises(MalformedFile, match=f"nested more than {MAX_SEQUENCE_DEPTH} levels"):
        file_layout(io.BytesIO(nested_bytes(MAX_SEQUENCE_DEPTH + 1)))
