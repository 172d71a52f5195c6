"""POST /studies/$bulkUpdate: every refused request, the one-at-a-time rule, v1."""

from __future__ import annotations

import json
import uuid

import pytest
from pydicom.uid import generate_uid

from operations.models import Operation, OperationStatus, OperationType
from studies.dicom.changeset import UPDATABLE_TAGS
from studies.dicom.implementation import IMPLEMENTATION_CLASS_UID
from tests.helpers import patient_name_change, start

pytestmark = pytest.mark.django_db

NAME = patient_name_change("New^Name")


def _refused(response) -> list[str]:
    """The ErrorComments of a 400 DICOM JSON FailedAttributesSequence."""
    assert response.status_code == 400, response.content
    assert response["Content-Type"] == "application/dicom+json"
    body = json.loads(response.content)
    assert list(body) == ["00741048"] and body["00741048"]["vr"] == "SQ"
    return [item["00000902"]["Value"][0] for item in body["00741048"]["Value"]]


def _text(response) -> str:
    assert response.status_code == 400, response.content
    assert response["Content-Type"].startswith("text/plain")
    return response.content.decode()


# --- studyInstanceUids ------------------------------------------------------------------------


@pytest.mark.parametrize("uids", [None, []])
def test_missing_or_empty_study_uids(client, uids):
    body = {"changeDataset": NAME} if uids is None else {"studyInstanceUids": uids, "changeDataset": NAME}
    assert _text(start(client, body)) == "The required field 'StudyInstanceUids' is missing or empty."
    assert not Operation.objects.exists()


def test_more_than_50_studies(client):
    response = start(client, {"studyInstanceUids": [generate_uid() for _ in range(51)], "changeDataset": NAME})
    assert _text(response) == "StudyInstanceUids count exceeded maximum length '50'"
    assert not Operation.objects.exists()


def test_exactly_50_studies_are_accepted(client):
    response = start(client, {"studyInstanceUids": [generate_uid() for _ in range(50)], "changeDataset": NAME})
    assert response.status_code == 202


@pytest.mark.parametrize("uid", ["1.2.abc", "1..2", "", "1.2." + "3" * 64, "1.2.3."])
def test_malformed_study_uid(client, uid):
    message = _text(start(client, {"studyInstanceUids": [generate_uid(), uid], "changeDataset": NAME}))
    assert message.startswith(
        "Dicom element 'StudyInstanceUid' failed validation for VR 'UI': DICOM Identifier is invalid."
    )
    assert message.endswith(f"Value: '{uid}'.")
    assert not Operation.objects.exists()


def test_study_uids_must_be_an_array_of_strings(client):
    message = _text(start(client, {"studyInstanceUids": "1.2.3", "changeDataset": NAME}))
    assert message == "The field 'studyInstanceUids' in request body is invalid: expected an array of strings."


def test_duplicate_study_uids_are_processed_once_and_names_are_case_insensitive(client):
    uid = generate_uid()
    response = start(client, {"StudyInstanceUIDs": [uid, uid + " "], "CHANGEDATASET": NAME})
    assert response.status_code == 202
    assert Operation.objects.get().parameters["studyInstanceUids"] == [uid]


# --- changeDataset ------------------------------------------------------------------------------


@pytest.mark.parametrize("change", [None, {}])
def test_missing_or_empty_change_dataset(client, change):
    body = {"studyInstanceUids": [generate_uid()]}
    if change is not None:
        body["changeDataset"] = change
    assert _text(start(client, body)) == "The required field 'ChangeDataset' is missing or empty."
    assert not Operation.objects.exists()


def test_change_dataset_keys_must_be_tags(client):
    message = _text(start(client, {"studyInstanceUids": [generate_uid()], "changeDataset": {"PatientName": {}}}))
    assert message == (
        "The field 'changeDataset' in request body is invalid: 'PatientName' is not a DICOM tag (8 hexadecimal digits)."
    )


@pytest.mark.parametrize(
    ("tag", "attribute"),
    [
        ("0020000D", {"vr": "UI", "Value": ["1.2.3"]}),  # StudyInstanceUID
        ("00080020", {"vr": "DA", "Value": ["20200101"]}),  # StudyDate: General Study, not in the list
        ("00101002", {"vr": "SQ", "Value": [{}]}),  # OtherPatientIDsSequence: sequences never
        ("00091001", {"vr": "LO", "Value": ["private"]}),
    ],
)
def test_attribute_outside_the_allowed_set(client, tag, attribute):
    comments = _refused(start(client, {"studyInstanceUids": [generate_uid()], "changeDataset": {tag: attribute}}))
    assert comments == [f"DICOM100: ({tag[:4]},{tag[4:]}) - Updating the tag is not supported"]
    assert not Operation.objects.exists()


@pytest.mark.parametrize(
    "attribute",
    [
        {"vr": "PN"},
        {"vr": "PN", "Value": []},
        {"vr": "PN", "Value": [None]},
        {"vr": "PN", "Value": [{"Alphabetic": ""}]},
        {"vr": "PN", "Value": [{}]},
    ],
)
def test_changing_to_null_is_refused(client, attribute):
    body = {"studyInstanceUids": [generate_uid()], "changeDataset": {"00100010": attribute}}
    comments = _refused(start(client, body))
    assert comments == ["DICOM100: (0010,0010) - Updating the tag to a null or empty value is not supported"]


@pytest.mark.parametrize(
    ("tag", "attribute", "reason"),
    [
        ("00100030", {"vr": "DA", "Value": ["1980-01-01"]},
         "Dicom element 'PatientBirthDate' failed validation for VR 'DA': Value is not a valid date (yyyyMMdd)."),
        ("00100040", {"vr": "CS", "Value": ["female"]},
         "Dicom element 'PatientSex' failed validation for VR 'CS': Value contains invalid character."),
        ("00101010", {"vr": "AS", "Value": ["42 years"]},
         "Dicom element 'PatientAge' failed validation for VR 'AS': Value is not a valid age string (nnnD|W|M|Y)."),
        ("00100020", {"vr": "LO", "Value": ["x" * 65]},
         "Dicom element 'PatientID' failed validation for VR 'LO': Value length exceeds maximum length of 64."),
        ("00101030", {"vr": "DS", "Value": [1.2345678901234567]},
         "Dicom element 'PatientWeight' failed validation for VR 'DS': Value is not a valid decimal string."),
        ("00100020", {"vr": "LO", "Value": ["A", "B"]},
         "Dicom element 'PatientID' allows one value, 2 were given."),
        ("00100010", {"vr": "LO", "Value": ["Doe"]},
         "The VR code 'LO' is incorrectly specified. The expected VR code for it is 'PN'."),
        ("00100010", {"vr": "PN", "Value": ["Doe^John"]},
         "Invalid DICOM JSON: a PN value must be an object with Alphabetic, Ideographic or Phonetic."),
        ("00100020", {"vr": "LO", "Value": [12]}, "Invalid DICOM JSON: a LO value must be a string."),
        ("00100020", {"Value": ["X"]}, "Invalid DICOM JSON: the attribute has no 'vr'."),
        ("00100020", {"vr": "LO", "Value": "X"}, "Invalid DICOM JSON: 'Value' must be an array."),
        ("00100020", {"vr": "LO", "InlineBinary": "AAAA"}, "Invalid DICOM JSON: unexpected member 'InlineBinary'."),
    ],
)
def test_value_invalid_for_the_vr(client, tag, attribute, reason):
    comments = _refused(start(client, {"studyInstanceUids": [generate_uid()], "changeDataset": {tag: attribute}}))
    assert comments == [f"DICOM100: ({tag[:4]},{tag[4:]}) - {reason}"]


def test_every_refused_attribute_is_named(client):
    change = {
        **NAME,
        "0020000D": {"vr": "UI", "Value": ["1.2.3"]},
        "00100030": {"vr": "DA", "Value": ["yesterday"]},
        "00100040": {"vr": "CS"},
    }
    comments = _refused(start(client, {"studyInstanceUids": [generate_uid()], "changeDataset": change}))
    assert [c.split(" - ")[0] for c in comments] == [
        "DICOM100: (0010,0030)", "DICOM100: (0010,0040)", "DICOM100: (0020,000D)",
    ]
    assert not Operation.objects.exists()


def test_every_allowed_attribute_is_accepted(client):
    """One valid value per allowed tag (36 of them), in a single request."""
    from pydicom.datadict import dictionary_VR

    samples = {"PN": {"Alphabetic": "Doe^Jo"}, "DA": "19991231", "TM": "101010", "AS": "042Y", "DS": 1.75,
               "CS": "M", "LT": "Line one\r\nline two\\with backslash"}
    change = {}
    for tag in sorted(UPDATABLE_TAGS):
        vr = dictionary_VR(tag)
        change[f"{tag:08X}"] = {"vr": vr, "Value": [samples.get(vr, "Value 1")]}
    assert len(change) == 36
    response = start(client, {"studyInstanceUids": [generate_uid()], "changeDataset": change})
    assert response.status_code == 202, response.content
    assert set(Operation.objects.get().parameters["changeDataset"]) == set(change)


def test_malformed_json_body(client):
    response = client.post("/v2/studies/$bulkUpdate", data="{not json", content_type="application/json")
    assert _text(response) == "The syntax of the request body is invalid."


def test_body_must_be_an_object(client):
    response = start(client, [generate_uid()])
    assert _text(response) == "The syntax of the request body is invalid."


# --- one at a time, versions ----------------------------------------------------------------


def test_second_update_while_one_is_unfinished_is_409(client):
    first = start(client, {"studyInstanceUids": [generate_uid()], "changeDataset": NAME})
    assert first.status_code == 202
    first_id = first.json()["id"]
    for status in (OperationStatus.NOT_STARTED, OperationStatus.RUNNING):
        Operation.objects.filter(pk=first_id).update(status=status)
        second = start(client, {"studyInstanceUids": [generate_uid()], "changeDataset": NAME})
        assert second.status_code == 409
        assert second.content.decode() == f"There is already an active update operation with ID '{first_id}'."
    assert Operation.objects.count() == 1
    Operation.objects.filter(pk=first_id).update(status=OperationStatus.SUCCEEDED)
    third = start(client, {"studyInstanceUids": [generate_uid()], "changeDataset": NAME})
    assert third.status_code == 202
    assert Operation.objects.filter(type=OperationType.UPDATE).count() == 2


def test_other_operation_types_do_not_block_an_update(client):
    Operation.objects.create(type=OperationType.EXPORT, status=OperationStatus.RUNNING)
    assert start(client, {"studyInstanceUids": [generate_uid()], "changeDataset": NAME}).status_code == 202


@pytest.mark.parametrize("version", ["v1", "v1.0-prerelease"])
def test_v1_answers_404(client, version):
    response = start(client, {"studyInstanceUids": [generate_uid()], "changeDataset": NAME}, version=version)
    assert response.status_code == 404
    assert not Operation.objects.exists()


def test_get_on_the_action_is_not_a_study_retrieve(client):
    response = client.get("/v2/studies/$bulkUpdate", HTTP_ACCEPT="application/dicom+json")
    assert response.status_code == 405


def test_implementation_class_uid_is_ours_and_derived_as_documented():
    # The derivation the module documents: the name-based UUID under the 2.25 arc.
    name_based = uuid.uuid5(uuid.NAMESPACE_URL, "https://dicomsvc.invalid/implementation")
    assert IMPLEMENTATION_CLASS_UID == f"2.25.{name_based.int}"
    assert IMPLEMENTATION_CLASS_UID.startswith("2.25.") and len(IMPLEMENTATION_CLASS_UID) <= 64
    assert not IMPLEMENTATION_CLASS_UID.startswith("1.3.6.1.4.1.311")
