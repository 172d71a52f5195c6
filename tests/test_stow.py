"""STOW-RS: storage, response dataset, per-instance failures, request-level errors."""

from __future__ import annotations

import io
import json

import pydicom
import pytest
from pydicom.uid import generate_uid

from changefeed.models import ChangeAction, ChangeFeedEntry
from studies.blobstore import blob_name, storage
from studies.models import Instance, InstanceStatus, Series, Study
from tests.helpers import MULTIPART_DICOM, dicom_bytes, instance_url, multipart_body, stow, uids_of

pytestmark = pytest.mark.django_db


def _sq(body: dict, tag: str) -> list[dict]:
    return body.get(tag, {}).get("Value", [])


def test_stow_stores_file_rows_metadata_and_feed(client):
    data = dicom_bytes("CT_small.dcm", PatientName="Doe^John", PatientID="PID-1")
    st, se, sop = uids_of(data)

    response = stow(client, [data])

    assert response.status_code == 200
    assert response["Content-Type"] == "application/dicom+json"
    body = response.json()
    (item,) = _sq(body, "00081199")
    assert item["00081155"]["Value"] == [sop]
    assert item["00081150"]["Value"] == ["1.2.840.10008.5.1.4.1.1.2"]
    assert item["00081190"]["Value"] == [f"http://127.0.0.1:8000/v2/studies/{st}/series/{se}/instances/{sop}"]
    assert "00081198" not in body
    instance = Instance.objects.get(sop_instance_uid=sop)
    assert instance.status == InstanceStatus.CREATED
    with storage().open(blob_name(partition_key=1, watermark=instance.watermark)) as fh:
        assert fh.read() == data
    metadata = json.loads(instance.metadata)
    assert metadata["00100010"] == {"vr": "PN", "Value": [{"Alphabetic": "Doe^John"}]}
    assert metadata["7FE00010"] == {"vr": "OW", "BulkDataURI": "7FE00010"}  # completed when served
    study = Study.objects.get(study_instance_uid=st)
    assert (study.patient_id, study.patient_name, study.patient_name_search) == ("PID-1", "Doe^John", "doe john")
    assert (study.num_series, study.num_instances, study.modalities_in_study) == (1, 1, "CT")
    assert Series.objects.get(series_instance_uid=se).num_instances == 1
    entry = ChangeFeedEntry.objects.get(sop_instance_uid=sop)
    assert (entry.action, entry.watermark) == (ChangeAction.CREATE, instance.watermark)


def test_stow_into_study_sets_study_retrieve_url(client):
    data = dicom_bytes()
    st, _se, _sop = uids_of(data)
    response = stow(client, [data], url=f"/v2/studies/{st}")
    assert response.status_code == 200
    assert response.json()["00081190"]["Value"] == [f"http://127.0.0.1:8000/v2/studies/{st}"]


def test_stow_single_part_application_dicom(client):
    data = dicom_bytes("MR_small.dcm")
    response = client.post("/v2/studies", data=data, content_type="application/dicom", HTTP_ACCEPT="*/*")
    assert response.status_code == 200
    assert Instance.objects.filter(sop_instance_uid=uids_of(data)[2], status=InstanceStatus.CREATED).exists()


@pytest.mark.parametrize(
    "content_type",
    [
        "multipart/related; type=application/dicom; boundary=XBOUNDARYX",
        'multipart/related; boundary="XBOUNDARYX"; type="application/dicom"',
    ],
)
def test_stow_accepts_quoted_and_bare_parameters(client, content_type):
    data = dicom_bytes()
    response = client.post(
        "/v2/studies", data=multipart_body([data]), content_type=content_type, HTTP_ACCEPT="application/dicom+json"
    )
    assert response.status_code == 200


def test_stow_leading_crlf_and_no_trailing_crlf(client):
    data = dicom_bytes()
    body = b"\r\n" + multipart_body([data])
    assert not body.endswith(b"\r\n")
    response = client.post("/v2/studies", data=body, content_type=MULTIPART_DICOM, HTTP_ACCEPT="application/dicom+json")
    assert response.status_code == 200


def test_stow_untyped_first_part_with_root_type(client):
    data = dicom_bytes()
    body = multipart_body([data], part_type=None)
    response = client.post("/v2/studies", data=body, content_type=MULTIPART_DICOM, HTTP_ACCEPT="application/dicom+json")
    assert response.status_code == 200


def test_stow_many_instances_in_one_request(client):
    study = generate_uid()
    parts = [dicom_bytes(StudyInstanceUID=study) for _ in range(5)]
    response = stow(client, parts)
    assert response.status_code == 200
    assert len(_sq(response.json(), "00081199")) == 5
    assert Study.objects.get(study_instance_uid=study).num_instances == 5
    assert Study.objects.get(study_instance_uid=study).num_series == 5


def test_stow_p10_without_preamble_is_normalised(client):
    ds = pydicom.dcmread(io.BytesIO(dicom_bytes()))
    raw = io.BytesIO()
    ds.preamble = None
    pydicom.dcmwrite(raw, ds, enforce_file_format=False)
    data = raw.getvalue()
    assert data[128:132] != b"DICM"
    response = stow(client, [data])
    assert response.status_code == 200
    instance = Instance.objects.get(sop_instance_uid=str(ds.SOPInstanceUID))
    with storage().open(blob_name(partition_key=1, watermark=instance.watermark)) as fh:
        stored = fh.read()
    assert stored[:128] == b"\x00" * 128 and stored[128:132] == b"DICM"
    reread = pydicom.dcmread(io.BytesIO(stored))
    assert reread.SOPInstanceUID == ds.SOPInstanceUID


def test_stow_already_stored_is_45070_and_keeps_original(client):
    data = dicom_bytes(PatientName="First^Stored")
    assert stow(client, [data]).status_code == 200
    other = dicom_bytes(
        PatientName="Second^Attempt",
        StudyInstanceUID=uids_of(data)[0],
        SeriesInstanceUID=uids_of(data)[1],
        SOPInstanceUID=uids_of(data)[2],
    )
    response = stow(client, [other])
    assert response.status_code == 409
    (failed,) = _sq(response.json(), "00081198")
    assert failed["00081197"]["Value"] == [45070]
    assert failed["00081155"]["Value"] == [uids_of(data)[2]]
    instance = Instance.objects.get(sop_instance_uid=uids_of(data)[2])
    assert json.loads(instance.metadata)["00100010"]["Value"][0]["Alphabetic"] == "First^Stored"
    assert ChangeFeedEntry.objects.filter(sop_instance_uid=uids_of(data)[2]).count() == 1


def test_stow_duplicate_within_request_is_202(client):
    data = dicom_bytes()
    response = stow(client, [data, data])
    assert response.status_code == 202
    body = response.json()
    assert len(_sq(body, "00081199")) == 1
    assert _sq(body, "00081198")[0]["00081197"]["Value"] == [45070]


def test_stow_not_dicom_part_is_272_and_others_stored(client):
    good = dicom_bytes()
    response = stow(client, [good, b"this is not dicom at all" * 10])
    assert response.status_code == 202
    body = response.json()
    assert _sq(body, "00081198")[0]["00081197"]["Value"] == [272]
    assert "00081155" not in _sq(body, "00081198")[0]
    assert Instance.objects.filter(status=InstanceStatus.CREATED).count() == 1


def test_stow_transfer_syntax_uid_that_is_no_uid_is_272_and_the_part_not_stored(client):
    # A corrupt file meta, as the drills' fuzzing made one: a NUL inside the Transfer Syntax
    # UID. PostgreSQL refused the row (an answer of 500); SQLite stored it.
    data = dicom_bytes()
    start = data.index(b"1.2.840.10008.1.2.1\x00")
    garbled = data[:start] + b"1.2.840.10008.1.2\x001\x00" + data[start + 20 :]
    good = dicom_bytes()

    response = stow(client, [garbled, good])

    assert response.status_code == 202
    (failed,) = _sq(response.json(), "00081198")
    assert failed["00081197"]["Value"] == [272]
    assert failed["00741048"]["Value"][0]["00000902"]["Value"] == [
        "The DICOM instance is invalid: its Transfer Syntax UID (0002,0010) is not a valid UID."
    ]
    assert list(Instance.objects.values_list("sop_instance_uid", flat=True)) == [uids_of(good)[2]]
    assert list(ChangeFeedEntry.objects.values_list("sop_instance_uid", flat=True)) == [uids_of(good)[2]]


@pytest.mark.parametrize("missing", ["SOPClassUID", "StudyInstanceUID", "SeriesInstanceUID"])
def test_stow_missing_required_uid_is_43264(client, missing):
    data = _without(missing)
    response = stow(client, [data])
    assert response.status_code == 409
    (failed,) = _sq(response.json(), "00081198")
    assert failed["00081197"]["Value"] == [43264]
    comments = [c["00000902"]["Value"][0] for c in failed["00741048"]["Value"]]
    assert any("is missing" in comment for comment in comments)
    assert not Instance.objects.exists()


def _without(keyword: str) -> bytes:
    ds = pydicom.dcmread(io.BytesIO(dicom_bytes()))
    delattr(ds, keyword)
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


def test_stow_invalid_uid_is_43264_with_reason(client):
    data = dicom_bytes(SOPInstanceUID="1.2.abc.4")
    response = stow(client, [data])
    assert response.status_code == 409
    (failed,) = _sq(response.json(), "00081198")
    assert failed["00081197"]["Value"] == [43264]
    assert failed["00081155"]["Value"] == ["1.2.abc.4"]
    comment = failed["00741048"]["Value"][0]["00000902"]["Value"][0]
    assert comment.startswith("DICOM100: (0008,0018) - Dicom element 'SOPInstanceUID' failed validation for VR 'UI'")


def test_stow_study_mismatch_is_43265(client):
    data = dicom_bytes()
    other_study = generate_uid()
    response = stow(client, [data], url=f"/v2/studies/{other_study}")
    assert response.status_code == 409
    (failed,) = _sq(response.json(), "00081198")
    assert failed["00081197"]["Value"] == [43265]
    assert "does not match" in failed["00741048"]["Value"][0]["00000902"]["Value"][0]
    assert not Study.objects.filter(study_instance_uid=other_study).exists()


def test_stow_v1_requires_patient_id_value_v2_only_presence(client):
    empty_id = dicom_bytes(PatientID="")
    response = stow(client, [empty_id], url="/v1/studies")
    assert response.status_code == 409
    assert _sq(response.json(), "00081198")[0]["00081197"]["Value"] == [43264]
    assert stow(client, [empty_id], url="/v2/studies").status_code == 200
    absent = dicom_bytes(PatientID=None)
    response = stow(client, [absent], url="/v2/studies")
    assert response.status_code == 409
    assert "(0010,0020)" in json.dumps(response.json())


def test_stow_invalid_indexed_attribute_v1_fails_v2_warns_and_drops(client):
    bad_v1 = dicom_bytes(StudyDate="2004XX19")
    response = stow(client, [bad_v1], url="/v1/studies")
    assert response.status_code == 409
    failed = _sq(response.json(), "00081198")[0]
    assert failed["00081197"]["Value"] == [43264]
    assert "(0008,0020)" in failed["00741048"]["Value"][0]["00000902"]["Value"][0]
    assert not Instance.objects.exists()

    bad_v2 = dicom_bytes(StudyDate="2004XX19")
    response = stow(client, [bad_v2], url="/v2/studies")
    assert response.status_code == 202
    item = _sq(response.json(), "00081199")[0]
    assert item["00081196"]["Value"] == [1]
    assert "(0008,0020)" in item["00741048"]["Value"][0]["00000902"]["Value"][0]
    instance = Instance.objects.get(sop_instance_uid=uids_of(bad_v2)[2])
    assert "00080020" not in json.loads(instance.metadata)
    assert Study.objects.get(pk=instance.study_id).study_date is None
    with storage().open(blob_name(partition_key=1, watermark=instance.watermark)) as fh:
        assert fh.read() == bad_v2  # the file keeps the attribute


def test_stow_multi_valued_indexed_attribute_warns(client):
    ds = pydicom.dcmread(io.BytesIO(dicom_bytes()))
    ds.AccessionNumber = ["ACC1", "ACC2"]
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    response = stow(client, [out.getvalue()])
    assert response.status_code == 200
    assert "only first value is indexed" in response["Warning"]
    assert response["Warning"].startswith('299 127.0.0.1:8000: "')
    assert Study.objects.get(study_instance_uid=str(ds.StudyInstanceUID)).accession_number == "ACC1"


def test_stow_implicit_vr_warning_reason(client):
    data = dicom_bytes("MR_small_implicit.dcm")
    response = stow(client, [data])
    assert response.status_code == 202
    assert _sq(response.json(), "00081199")[0]["00081196"]["Value"] == [45063]


def test_stow_empty_bodies_are_204(client):
    response = client.post("/v2/studies", data=b"", content_type=MULTIPART_DICOM, HTTP_ACCEPT="application/dicom+json")
    assert response.status_code == 204
    response = client.post(
        "/v2/studies", data=b"--XBOUNDARYX--", content_type=MULTIPART_DICOM, HTTP_ACCEPT="application/dicom+json"
    )
    assert response.status_code == 204


@pytest.mark.parametrize(
    ("content_type", "status", "message"),
    [
        ("application/json", 415, "The specified content type 'application/json' is not supported."),
        ("application/dicom; transfer-syntax=*", 415, "is not supported"),
        ('multipart/related; type="application/dicom"', 415, "is either not multipart or is missing boundary."),
        ('multipart/related; type="application/dicom+json"; boundary=XBOUNDARYX', 415, "application/dicom+json"),
        (
            'multipart/related; type="application/dicom"; boundary=XBOUNDARYX; start="<a>"',
            400,
            "The start parameter in multipart/related request is not supported.",
        ),
    ],
)
def test_stow_request_level_errors(client, content_type, status, message):
    response = client.post(
        "/v2/studies",
        data=multipart_body([dicom_bytes()]),
        content_type=content_type,
        HTTP_ACCEPT="application/dicom+json",
    )
    assert response.status_code == status
    assert message in response.content.decode()
    assert not Instance.objects.exists()


def test_stow_part_with_other_type_rejects_whole_request(client):
    good = dicom_bytes()
    body = (
        multipart_body([good])[: -len(b"--XBOUNDARYX--")]
        + b"--XBOUNDARYX\r\nContent-Type: text/plain\r\n\r\nhello\r\n--XBOUNDARYX--"
    )
    response = client.post("/v2/studies", data=body, content_type=MULTIPART_DICOM, HTTP_ACCEPT="application/dicom+json")
    assert response.status_code == 415
    assert "text/plain" in response.content.decode()
    assert not Instance.objects.exists()


def test_stow_broken_framing_is_400(client):
    body = b"--XBOUNDARYX\r\nContent-Type: application/dicom\r\n\r\n" + dicom_bytes()
    response = client.post("/v2/studies", data=body, content_type=MULTIPART_DICOM, HTTP_ACCEPT="application/dicom+json")
    assert response.status_code == 400
    assert response.content.decode() == "There was an error reading the multipart request."
    assert not Instance.objects.exists()


@pytest.mark.parametrize("accept", ["application/dicom", "text/html", "application/dicom+json+x"])
def test_stow_bad_accept_is_406(client, accept):
    response = stow(client, [dicom_bytes()], HTTP_ACCEPT=accept)
    assert response.status_code == 406
    assert not Instance.objects.exists()


@pytest.mark.parametrize("accept", ["*/*", "application/json", "application/dicom+json; q=0.5, text/html"])
def test_stow_accepted_accept_values(client, accept):
    assert stow(client, [dicom_bytes()], HTTP_ACCEPT=accept).status_code == 200


def test_stow_malformed_study_uid_in_path_is_400(client):
    response = stow(client, [dicom_bytes()], url="/v2/studies/1.2.x.3")
    assert response.status_code == 400
    assert response.content.decode() == "The specified StudyInstanceUID '1.2.x.3' is not a valid DICOM UID."


def test_stow_above_limit_is_413_and_nothing_stored(client, settings):
    settings.DICOM_MAX_STOW_BYTES = 1000
    response = stow(client, [dicom_bytes()])
    assert response.status_code == 413
    assert response.content.decode() == "The request exceeded the allowed limit of 1000 bytes."
    assert not Instance.objects.exists()


def test_stow_response_url_uses_public_base_url_not_host(client, settings):
    settings.DICOM_PUBLIC_BASE_URL = "https://pacs.example.org/dicom"
    settings.ALLOWED_HOSTS = ["*"]
    data = dicom_bytes()
    response = stow(client, [data], HTTP_HOST="evil.example.com")
    url = _sq(response.json(), "00081199")[0]["00081190"]["Value"][0]
    assert url == "https://pacs.example.org/dicom" + instance_url(data)


def test_version_prefixes(client):
    data = dicom_bytes()
    response = stow(client, [data], url="/v1.0-prerelease/studies")
    assert response.status_code == 200
    assert response["api-supported-versions"] == "1.0-prerelease, 1, 2"
    url = _sq(response.json(), "00081199")[0]["00081190"]["Value"][0]
    assert url == "http://127.0.0.1:8000" + instance_url(data, prefix="/v1.0-prerelease")
    assert stow(client, [dicom_bytes()], url="/studies").status_code == 404
    assert stow(client, [dicom_bytes()], url="/v3/studies").status_code == 404
