"""WADO-RS: instances (single and multipart), transcoding, metadata, frames, errors."""

from __future__ import annotations

import io
import json

import numpy as np
import pydicom
import pytest
from pydicom.uid import generate_uid

from tests.helpers import dicom_bytes, instance_url, multipart_parts, response_bytes, store, stow, uids_of

pytestmark = pytest.mark.django_db

ORIGINAL_MULTIPART = 'multipart/related; type="application/dicom"; transfer-syntax=*'
ELE = "1.2.840.10008.1.2.1"


@pytest.mark.parametrize(
    ("name", "ts"),
    [
        ("CT_small.dcm", "1.2.840.10008.1.2.1"),
        ("MR_small.dcm", "1.2.840.10008.1.2.1"),
        ("JPEG2000.dcm", "1.2.840.10008.1.2.4.91"),
        ("MR_small_RLE.dcm", "1.2.840.10008.1.2.5"),
        ("MR_small_implicit.dcm", "1.2.840.10008.1.2"),
        ("MR_small_bigendian.dcm", "1.2.840.10008.1.2.2"),
        ("SC_rgb_rle_2frame.dcm", "1.2.840.10008.1.2.5"),
        ("rtdose.dcm", "1.2.840.10008.1.2"),
    ],
)
def test_round_trip_is_byte_identical(client, name, ts):
    data = dicom_bytes(name)
    assert str(pydicom.dcmread(io.BytesIO(data)).file_meta.TransferSyntaxUID) == ts
    assert stow(client, [data]).status_code in (200, 202)

    single = client.get(instance_url(data), HTTP_ACCEPT="application/dicom; transfer-syntax=*")
    assert single.status_code == 200
    assert single["Content-Type"] == f"application/dicom; transfer-syntax={ts}"
    assert response_bytes(single) == data

    multi = client.get(instance_url(data), HTTP_ACCEPT=ORIGINAL_MULTIPART)
    ((headers, body),) = multipart_parts(multi["Content-Type"], response_bytes(multi))
    assert headers["content-type"] == f"application/dicom; transfer-syntax={ts}"
    assert body == data


@pytest.mark.parametrize("name", ["JPEG2000.dcm", "MR_small_RLE.dcm", "MR_small_implicit.dcm", "MR_small_bigendian.dcm"])
def test_default_syntax_transcodes_to_explicit_le(client, name):
    data = dicom_bytes(name)
    stow(client, [data])  # some are stored with a warning (202), some without (200)
    response = client.get(instance_url(data), HTTP_ACCEPT='multipart/related; type="application/dicom"')
    assert response.status_code == 200
    ((headers, body),) = multipart_parts(response["Content-Type"], response_bytes(response))
    assert headers["content-type"] == f"application/dicom; transfer-syntax={ELE}"
    served = pydicom.dcmread(io.BytesIO(body))
    original = pydicom.dcmread(io.BytesIO(data))
    assert served.file_meta.TransferSyntaxUID == ELE
    assert served.SOPInstanceUID == original.SOPInstanceUID
    assert (served.pixel_array == original.pixel_array).all()


def test_study_and_series_retrieve_every_instance_multipart(client):
    study = generate_uid()
    series = generate_uid()
    parts = [dicom_bytes("CT_small.dcm", StudyInstanceUID=study, SeriesInstanceUID=series) for _ in range(3)]
    parts.append(dicom_bytes("MR_small_RLE.dcm", StudyInstanceUID=study))
    store(*parts)

    response = client.get(f"/v2/studies/{study}", HTTP_ACCEPT=ORIGINAL_MULTIPART)
    content_type = response["Content-Type"]
    assert content_type.startswith('multipart/related; type="application/dicom"; boundary=')
    bodies = sorted(body for _headers, body in multipart_parts(content_type, response_bytes(response)))
    assert bodies == sorted(parts)

    # No transfer-syntax: every instance in Explicit VR LE, the RLE one transcoded (Microsoft answers 406).
    response = client.get(f"/v2/studies/{study}", HTTP_ACCEPT='multipart/related; type="application/dicom"')
    assert response.status_code == 200
    served = multipart_parts(response["Content-Type"], response_bytes(response))
    assert len(served) == 4
    assert all(headers["content-type"].endswith(ELE) for headers, _ in served)

    response = client.get(f"/v2/studies/{study}/series/{series}", HTTP_ACCEPT=ORIGINAL_MULTIPART)
    assert len(multipart_parts(response["Content-Type"], response_bytes(response))) == 3


def test_star_accept_serves_original_multipart(client):
    data = dicom_bytes("MR_small_RLE.dcm")
    store(data)
    response = client.get(instance_url(data), HTTP_ACCEPT="*/*")
    ((headers, body),) = multipart_parts(response["Content-Type"], response_bytes(response))
    assert headers["content-type"] == "application/dicom; transfer-syntax=1.2.840.10008.1.2.5"
    assert body == data


@pytest.mark.parametrize(
    "accept",
    ["image/jpeg", 'multipart/related; type="application/dicom"; transfer-syntax=1.2.3.4', "application/dicom+json"],
)
def test_retrieve_unacceptable_is_406(client, accept):
    data = dicom_bytes()
    store(data)
    response = client.get(instance_url(data), HTTP_ACCEPT=accept)
    assert response.status_code == 406
    assert response.content.decode() == "The request headers are not acceptable"


def test_study_level_rejects_single_part_accept(client):
    data = dicom_bytes()
    store(data)
    response = client.get(f"/v2/studies/{uids_of(data)[0]}", HTTP_ACCEPT="application/dicom; transfer-syntax=*")
    assert response.status_code == 406


def test_undecodable_syntax_is_406_without_star(client):
    # 12-bit JPEG Extended that no installed decoder reads (JPEG-LS decodes since pylibjpeg-libjpeg).
    data = dicom_bytes("JPEG-lossy.dcm", PatientID="JLS")
    store(data)
    response = client.get(instance_url(data), HTTP_ACCEPT="application/dicom")
    assert response.status_code == 406
    assert response.content.decode() == "The specified transcoding is not supported."
    assert response_bytes(client.get(instance_url(data), HTTP_ACCEPT="application/dicom; transfer-syntax=*")) == data


def test_transcode_size_limit_is_406(client, settings):
    data = dicom_bytes("MR_small_RLE.dcm")
    store(data)
    settings.DICOM_MAX_TRANSCODE_BYTES = 100
    response = client.get(instance_url(data), HTTP_ACCEPT="application/dicom")
    assert response.status_code == 406
    assert "above the supported limit of 100" in response.content.decode()


def test_unknown_and_malformed_uids(client):
    data = dicom_bytes()
    store(data)
    st, se, sop = uids_of(data)
    accept = {"HTTP_ACCEPT": ORIGINAL_MULTIPART}
    assert client.get(f"/v2/studies/{generate_uid()}", **accept).content.decode() == "The specified study cannot be found."
    response = client.get(f"/v2/studies/{st}/series/{generate_uid()}", **accept)
    assert (response.status_code, response.content.decode()) == (404, "The specified series cannot be found.")
    response = client.get(f"/v2/studies/{st}/series/{se}/instances/{generate_uid()}", **accept)
    assert (response.status_code, response.content.decode()) == (404, "The specified instance cannot be found.")
    response = client.get(f"/v2/studies/{st}/series/abc/instances/{sop}", **accept)
    assert response.status_code == 400
    assert response.content.decode() == "The specified SeriesInstanceUID 'abc' is not a valid DICOM UID."


def test_metadata_at_three_levels_with_etag(client):
    study = generate_uid()
    first = dicom_bytes("CT_small.dcm", StudyInstanceUID=study, PatientName="Meta^Data")
    second = dicom_bytes("MR_small.dcm", StudyInstanceUID=study)
    store(first, second)
    st, se, sop = uids_of(first)

    response = client.get(f"/v2/studies/{st}/metadata", HTTP_ACCEPT="application/dicom+json")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/dicom+json"
    documents = response.json()
    assert {d["00080018"]["Value"][0] for d in documents} == {sop, uids_of(second)[2]}
    for document in documents:
        uid = document["00080018"]["Value"][0]
        url = f"http://127.0.0.1:8000/v2/studies/{st}/series/{document['0020000E']['Value'][0]}/instances/{uid}"
        assert document["7FE00010"]["BulkDataURI"] == f"{url}/bulkdata/7FE00010"
    etag = response["ETag"]
    assert etag.endswith("-2")

    assert client.get(f"/v2/studies/{st}/metadata", HTTP_ACCEPT="application/dicom+json",
                      HTTP_IF_NONE_MATCH=etag).status_code == 304

    series_docs = client.get(f"/v2/studies/{st}/series/{se}/metadata", HTTP_ACCEPT="*/*").json()
    assert [d["00080018"]["Value"][0] for d in series_docs] == [sop]
    instance = client.get(f"{instance_url(first)}/metadata", HTTP_ACCEPT="application/json")
    (doc,) = instance.json()
    assert doc["00100010"]["Value"] == [{"Alphabetic": "Meta^Data"}]
    assert instance["ETag"].isdigit()

    third = dicom_bytes(StudyInstanceUID=study)
    store(third)
    changed = client.get(f"/v2/studies/{st}/metadata", HTTP_ACCEPT="application/dicom+json", HTTP_IF_NONE_MATCH=etag)
    assert changed.status_code == 200
    assert changed["ETag"] != etag


def test_metadata_requires_json_accept(client):
    data = dicom_bytes()
    store(data)
    assert client.get(f"{instance_url(data)}/metadata", HTTP_ACCEPT="application/dicom").status_code == 406


def test_original_header_without_update_serves_the_only_version(client):
    data = dicom_bytes()
    store(data)
    response = client.get(
        instance_url(data), HTTP_ACCEPT="application/dicom; transfer-syntax=*", HTTP_MSDICOM_REQUEST_ORIGINAL="true"
    )
    assert response_bytes(response) == data


OCTET_ORIGINAL = 'multipart/related; type="application/octet-stream"; transfer-syntax=*'


def test_frames_native_multiframe(client):
    data = dicom_bytes("rtdose.dcm")
    store(data, status=202)  # stored with a warning
    ds = pydicom.dcmread(io.BytesIO(data))
    frames = ds.pixel_array
    response = client.get(f"{instance_url(data)}/frames/1,3", HTTP_ACCEPT=OCTET_ORIGINAL)
    assert response.status_code == 200
    assert response["Content-Type"].startswith('multipart/related; type="application/octet-stream"; boundary=')
    parts = multipart_parts(response["Content-Type"], response.content)
    assert [p[0]["content-type"] for p in parts] == [f"application/octet-stream; transfer-syntax={ELE}"] * 2
    assert parts[0][1] == frames[0].astype("<u4" if frames.dtype.itemsize == 4 else frames.dtype).tobytes()
    assert parts[1][1] == frames[2].astype("<u4" if frames.dtype.itemsize == 4 else frames.dtype).tobytes()


def test_frames_encapsulated_original_and_decoded(client):
    data = dicom_bytes("SC_rgb_rle_2frame.dcm")
    store(data)
    ds = pydicom.dcmread(io.BytesIO(data))
    from pydicom.encaps import generate_frames

    expected = list(generate_frames(ds.PixelData, number_of_frames=2))
    response = client.get(f"{instance_url(data)}/frames/2", HTTP_ACCEPT=OCTET_ORIGINAL)
    ((headers, body),) = multipart_parts(response["Content-Type"], response.content)
    assert headers["content-type"] == "application/octet-stream; transfer-syntax=1.2.840.10008.1.2.5"
    assert body == expected[1]

    decoded = client.get(f"{instance_url(data)}/frames/2", HTTP_ACCEPT='multipart/related; type="application/octet-stream"')
    ((headers, body),) = multipart_parts(decoded["Content-Type"], decoded.content)
    assert headers["content-type"] == f"application/octet-stream; transfer-syntax={ELE}"
    assert body == ds.pixel_array[1].tobytes()

    single = client.get(f"{instance_url(data)}/frames/1", HTTP_ACCEPT="application/octet-stream; transfer-syntax=*")
    assert single["Content-Type"] == "application/octet-stream; transfer-syntax=1.2.840.10008.1.2.5"
    assert single.content == expected[0]


@pytest.mark.parametrize(("frames", "status"), [("0", 400), ("1,0", 400), ("a", 400), ("-1", 400), ("3", 404)])
def test_frames_errors(client, frames, status):
    data = dicom_bytes("SC_rgb_rle_2frame.dcm")
    store(data)
    response = client.get(f"{instance_url(data)}/frames/{frames}", HTTP_ACCEPT=OCTET_ORIGINAL)
    assert response.status_code == status
    expected = (
        "The specified frame cannot be found."
        if status == 404
        else "The specified frames value is not valid. At least one frame must be present, "
        "and all requested frames must have value greater than 0."
    )
    assert response.content.decode() == expected


def test_frames_single_part_for_many_frames_is_400(client):
    data = dicom_bytes("SC_rgb_rle_2frame.dcm")
    store(data)
    response = client.get(f"{instance_url(data)}/frames/1,2", HTTP_ACCEPT="application/octet-stream; transfer-syntax=*")
    assert response.status_code == 400
    assert "use multi-part accept header" in response.content.decode()


def test_frames_star_type_accepted(client):
    data = dicom_bytes("CT_small.dcm")
    store(data)
    response = client.get(f"{instance_url(data)}/frames/1", HTTP_ACCEPT='multipart/related; type="*/*"')
    ((headers, body),) = multipart_parts(response["Content-Type"], response.content)
    assert body == pydicom.dcmread(io.BytesIO(data)).PixelData


def test_metadata_is_json_array_even_for_one_instance(client):
    data = dicom_bytes()
    store(data)
    body = json.loads(client.get(f"{instance_url(data)}/metadata", HTTP_ACCEPT="application/dicom+json").content)
    assert isinstance(body, list) and len(body) == 1


def test_study_part_that_fails_to_decode_is_served_as_stored(client):
    study = generate_uid()
    ok = dicom_bytes("MR_small_RLE.dcm", StudyInstanceUID=study)
    odd = dicom_bytes("JPEG-lossy.dcm", StudyInstanceUID=study, PatientID="X")  # no decoder reads it
    store(ok, odd)
    response = client.get(f"/v2/studies/{study}", HTTP_ACCEPT='multipart/related; type="application/dicom"')
    assert response.status_code == 200
    parts = {body: headers["content-type"] for headers, body in multipart_parts(response["Content-Type"], response_bytes(response))}
    assert parts[odd] == "application/dicom; transfer-syntax=1.2.840.10008.1.2.4.51"
    (transcoded,) = [body for body in parts if body != odd]
    assert parts[transcoded] == f"application/dicom; transfer-syntax={ELE}"
    # Alone, the same instance answers 406 before any byte is sent.
    assert client.get(instance_url(odd), HTTP_ACCEPT="application/dicom").status_code == 406


def test_content_length_when_every_part_is_served_as_stored(client):
    study = generate_uid()
    parts = [dicom_bytes("CT_small.dcm", StudyInstanceUID=study) for _ in range(2)]
    parts.append(dicom_bytes("MR_small_RLE.dcm", StudyInstanceUID=study))
    store(*parts)

    response = client.get(f"/v2/studies/{study}", HTTP_ACCEPT=ORIGINAL_MULTIPART)
    body = response_bytes(response)
    assert int(response["Content-Length"]) == len(body)
    assert sorted(b for _h, b in multipart_parts(response["Content-Type"], body)) == sorted(parts)

    single = client.get(instance_url(parts[2]), HTTP_ACCEPT="application/dicom; transfer-syntax=*")
    assert int(single["Content-Length"]) == len(parts[2]) and response_bytes(single) == parts[2]

    # The RLE part is transcoded on the fly: its size is unknown up front, so no Content-Length.
    response = client.get(f"/v2/studies/{study}", HTTP_ACCEPT='multipart/related; type="application/dicom"')
    assert not response.has_header("Content-Length")
    assert len(multipart_parts(response["Content-Type"], response_bytes(response))) == 3


def test_single_part_above_one_mib_is_streamed_with_its_length(client):
    ds = pydicom.dcmread(io.BytesIO(dicom_bytes()))
    ds.Rows, ds.Columns = 1024, 768
    ds.PixelData = np.arange(1024 * 768, dtype="<u2").tobytes()
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    data = out.getvalue()
    store(data)

    response = client.get(instance_url(data), HTTP_ACCEPT="application/dicom; transfer-syntax=*")
    assert response.streaming and int(response["Content-Length"]) == len(data)
    assert response_bytes(response) == data
    small = dicom_bytes()
    store(small)
    response = client.get(instance_url(small), HTTP_ACCEPT="application/dicom; transfer-syntax=*")
    assert not response.streaming and response.content == small


def test_frames_of_a_deflated_file_are_decoded_not_cut_from_the_stored_bytes(client):
    data = dicom_bytes("image_dfl.dcm")
    assert stow(client, [data]).status_code == 200
    pixels = pydicom.dcmread(io.BytesIO(data)).pixel_array
    for accept in (OCTET_ORIGINAL, 'multipart/related; type="application/octet-stream"'):
        response = client.get(f"{instance_url(data)}/frames/1", HTTP_ACCEPT=accept)
        ((headers, body),) = multipart_parts(response["Content-Type"], response.content)
        assert headers["content-type"] == f"application/octet-stream; transfer-syntax={ELE}"
        assert body == pixels.astype(pixels.dtype.newbyteorder("<")).tobytes()


@pytest.mark.parametrize("path", ["series/1.3", "series/1.3/instances/1.4/metadata", "metadata"])
def test_a_post_to_a_read_route_is_405_and_creates_no_partition(client, settings, path):
    from partitions.models import Partition

    settings.DICOM_ENABLE_DATA_PARTITIONS = True
    response = client.post(f"/v2/partitions/unseen/studies/1.2/{path}", data=b"", content_type="application/dicom")
    assert response.status_code == 405
    assert not Partition.objects.filter(partition_name="unseen").exists()
