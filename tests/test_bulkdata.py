"""Bulk data: metadata's InlineBinary and BulkDataURIs, and the bytes and ranges those URIs serve."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from pydicom.encaps import generate_frames
from pydicom.uid import ImplicitVRLittleEndian

from operations.runner import operation_run
from tests.helpers import (
    BIG_OB,
    BIG_OB_VALUE,
    SMALL_OB,
    base,
    binary_attributes_bytes,
    dicom_bytes,
    instance_url,
    multipart_parts,
    patient_name_change,
    read,
    response_bytes,
    start,
    store,
    uids_of,
)

pytestmark = pytest.mark.django_db

OCTET = "application/octet-stream"
ROOT = "http://127.0.0.1:8000"
ICON_PIXELS = "00880200/0/7FE00010"


def metadata(client: Any, data: bytes, prefix: str = "/v2") -> dict[str, Any]:
    response = client.get(f"{instance_url(data, prefix)}/metadata", HTTP_ACCEPT="application/dicom+json")
    assert response.status_code == 200
    (document,) = response.json()
    return document


def local(uri: str) -> str:
    assert uri.startswith(ROOT), uri
    return uri[len(ROOT) :]


def get(client: Any, uri: str, accept: str = OCTET, **headers: str) -> Any:
    return client.get(local(uri), HTTP_ACCEPT=accept, **headers)


@pytest.mark.parametrize("transfer_syntax", [None, ImplicitVRLittleEndian], ids=["explicit", "implicit"])
def test_metadata_gives_small_values_inline_and_large_ones_by_uri_that_serve_their_bytes(client, transfer_syntax):
    data = binary_attributes_bytes(transfer_syntax=transfer_syntax)
    store(data, status=200 if transfer_syntax is None else 202)  # 202: CT_small's invalid values under implicit VR
    ds = read(data)
    document = metadata(client, data)
    url = f"{ROOT}{instance_url(data)}"

    assert document[f"{SMALL_OB:08X}"]["InlineBinary"] == base64.b64encode(b"0123456789abcdef").decode()
    expected = {
        f"{BIG_OB:08X}": BIG_OB_VALUE,
        "7FE00010": ds.PixelData,
        ICON_PIXELS: ds.IconImageSequence[0].PixelData,
    }
    assert document[f"{BIG_OB:08X}"]["BulkDataURI"] == f"{url}/bulkdata/{BIG_OB:08X}"
    assert document["7FE00010"] == {"vr": "OW", "BulkDataURI": f"{url}/bulkdata/7FE00010"}
    assert document["00880200"]["Value"][0]["7FE00010"]["BulkDataURI"] == f"{url}/bulkdata/{ICON_PIXELS}"
    for path, value in expected.items():
        response = get(client, f"{url}/bulkdata/{path}")
        assert response.status_code == 200, path
        assert (response["Content-Type"], response["Accept-Ranges"]) == (OCTET, "bytes")
        assert response_bytes(response) == value, path


def test_default_answer_is_multipart_with_one_octet_stream_part(client):
    data = binary_attributes_bytes()
    store(data)
    uri = metadata(client, data)[f"{BIG_OB:08X}"]["BulkDataURI"]
    for accept in ("*/*", 'multipart/related; type="application/octet-stream"', "multipart/related"):
        response = get(client, uri, accept)
        assert response.status_code == 200
        assert response["Content-Type"].startswith('multipart/related; type="application/octet-stream"')
        body = response_bytes(response)
        assert int(response["Content-Length"]) == len(body)
        ((headers, part),) = multipart_parts(response["Content-Type"], body)
        assert headers == {"content-type": OCTET}
        assert part == BIG_OB_VALUE


@pytest.mark.parametrize(
    ("header", "start", "stop"),
    [("bytes=10-19", 10, 20), ("bytes=2990-", 2990, 3000), ("bytes=-7", 2993, 3000), ("bytes=100-99999", 100, 3000)],
)
def test_a_range_answers_206_with_those_bytes(client, header, start, stop):
    data = binary_attributes_bytes()
    store(data)
    value = BIG_OB_VALUE
    uri = metadata(client, data)[f"{BIG_OB:08X}"]["BulkDataURI"]

    response = get(client, uri, HTTP_RANGE=header)
    assert response.status_code == 206
    assert response["Content-Range"] == f"bytes {start}-{stop - 1}/3000"
    assert response_bytes(response) == value[start:stop]

    response = get(client, uri, "multipart/related; type=application/octet-stream", HTTP_RANGE=header)
    assert response.status_code == 206
    ((headers, part),) = multipart_parts(response["Content-Type"], response_bytes(response))
    assert headers["content-range"] == f"bytes {start}-{stop - 1}/3000"
    assert part == value[start:stop]


def test_a_range_of_pixel_data_streamed_from_a_large_file(client):
    # 2 MiB of native Pixel Data: read by range and streamed, never whole.
    rows = 1024
    data = dicom_bytes(Rows=rows, Columns=1024, PixelData=bytes(range(256)) * (rows * 1024 * 2 // 256))
    store(data)
    uri = metadata(client, data)["7FE00010"]["BulkDataURI"]
    response = get(client, uri, HTTP_RANGE="bytes=1048570-2097140")
    assert response.status_code == 206
    assert response["Content-Range"] == f"bytes 1048570-2097140/{rows * 1024 * 2}"
    assert response_bytes(response) == read(data).PixelData[1048570:2097141]


@pytest.mark.parametrize("header", ["bytes=3000-", "bytes=5000-6000", "bytes=-0"])
def test_an_unsatisfiable_range_is_416_naming_the_length(client, header):
    data = binary_attributes_bytes()
    store(data)
    response = get(client, metadata(client, data)[f"{BIG_OB:08X}"]["BulkDataURI"], HTTP_RANGE=header)
    assert (response.status_code, response["Content-Range"]) == (416, "bytes */3000")
    assert response.content.decode() == "The requested range is not satisfiable: the value is 3000 bytes long."


@pytest.mark.parametrize("header", ["bytes=0-1,5-6", "items=0-4", "bytes=9-2", "bytes=x"])
def test_a_range_the_server_does_not_support_is_ignored(client, header):
    data = binary_attributes_bytes()
    store(data)
    response = get(client, metadata(client, data)[f"{BIG_OB:08X}"]["BulkDataURI"], HTTP_RANGE=header)
    assert response.status_code == 200
    assert "Content-Range" not in response
    assert response_bytes(response) == BIG_OB_VALUE


def test_encapsulated_pixel_data_answers_with_its_frames(client):
    data = dicom_bytes("SC_rgb_jpeg_dcmtk.dcm")
    store(data)
    document = metadata(client, data)
    assert document["7FE00010"]["vr"] == "OB"
    accept = 'multipart/related; type="application/octet-stream"; transfer-syntax=*'
    response = get(client, document["7FE00010"]["BulkDataURI"], accept)
    assert response.status_code == 200
    ((headers, frame),) = multipart_parts(response["Content-Type"], response_bytes(response))
    assert headers["content-type"] == f"{OCTET}; transfer-syntax=1.2.840.10008.1.2.4.50"
    assert frame == next(generate_frames(read(data).PixelData, number_of_frames=1))


def test_big_endian_values_are_read_through_pydicom(client):
    data = dicom_bytes("MR_small_bigendian.dcm")
    store(data)
    response = get(client, metadata(client, data)["7FE00010"]["BulkDataURI"], HTTP_RANGE="bytes=0-63")
    assert response.status_code == 206
    assert response_bytes(response) == read(data).PixelData[:64]


def test_uris_name_the_partition_and_resolve_only_there(client, partitions_on):
    data = binary_attributes_bytes()
    store(data, partition="alice")
    document = metadata(client, data, prefix=base("alice"))
    uri = document[f"{BIG_OB:08X}"]["BulkDataURI"]
    assert uri == f"{ROOT}{instance_url(data, base('alice'))}/bulkdata/{BIG_OB:08X}"
    assert get(client, uri).status_code == 200
    store(dicom_bytes(), partition="bob")
    response = get(client, uri.replace("/alice/", "/bob/"))
    assert (response.status_code, response.content.decode()) == (404, "The specified instance cannot be found.")


def test_unknown_and_malformed_paths(client):
    data = binary_attributes_bytes()
    store(data)
    url = instance_url(data)
    response = client.get(f"{url}/bulkdata/00091003", HTTP_ACCEPT=OCTET)
    assert (response.status_code, response.content.decode()) == (404, "The specified bulk data cannot be found.")
    response = client.get(f"{url}/bulkdata/00880200/3/7FE00010", HTTP_ACCEPT=OCTET)
    assert response.status_code == 404
    response = client.get(f"{url}/bulkdata/7FE0", HTTP_ACCEPT=OCTET)
    assert response.status_code == 400
    assert response.content.decode() == (
        "The bulk data path '7FE0' is not valid: expected a tag (7FE00010), or sequence tag/item/tag."
    )
    response = client.get(f"{url}/bulkdata/{BIG_OB:08X}", HTTP_ACCEPT="image/jpeg")
    assert (response.status_code, response.content.decode()) == (406, "The request headers are not acceptable")


def test_the_threshold_is_a_setting(client, settings):
    settings.DICOM_BULKDATA_THRESHOLD_BYTES = 8
    data = binary_attributes_bytes()
    store(data)
    document = metadata(client, data)
    uri = document[f"{SMALL_OB:08X}"]["BulkDataURI"]
    assert response_bytes(get(client, uri)) == b"0123456789abcdef"


def test_implicit_vr_test_file_pixel_data(client):
    data = dicom_bytes("MR_small_implicit.dcm")
    store(data, status=202)
    response = get(client, metadata(client, data)["7FE00010"]["BulkDataURI"])
    assert response_bytes(response) == read(data).PixelData


def test_uris_survive_a_bulk_update_and_read_the_version_asked_for(client):
    data = binary_attributes_bytes()
    store(data)
    response = start(client, {"studyInstanceUids": [uids_of(data)[0]], "changeDataset": patient_name_change("New^Name")})
    operation_run(operation_id=response.json()["id"])
    latest = metadata(client, data)
    assert latest["00100010"]["Value"] == [{"Alphabetic": "New^Name"}]
    uri = latest[f"{BIG_OB:08X}"]["BulkDataURI"]
    assert uri.endswith(f"/bulkdata/{BIG_OB:08X}")
    assert response_bytes(get(client, uri, HTTP_RANGE="bytes=100-199")) == BIG_OB_VALUE[100:200]
    original = get(client, uri, HTTP_MSDICOM_REQUEST_ORIGINAL="true", HTTP_RANGE="bytes=100-199")
    assert response_bytes(original) == BIG_OB_VALUE[100:200]
    pixels = get(client, latest["7FE00010"]["BulkDataURI"])
    assert response_bytes(pixels) == read(data).PixelData


def test_search_results_leave_binary_values_out(client):
    data = binary_attributes_bytes()
    store(data)
    sop = uids_of(data)[2]
    response = client.get(
        f"/v2/instances?SOPInstanceUID={sop}&includefield=7FE00010&includefield={SMALL_OB:08X}",
        HTTP_ACCEPT="application/dicom+json",
    )
    (result,) = response.json()
    assert "7FE00010" not in result  # its stored URI is relative: search results carry no bulk data
    assert result[f"{SMALL_OB:08X}"]["InlineBinary"] == base64.b64encode(b"0123456789abcdef").decode()
    response = client.get(f"/v2/instances?SOPInstanceUID={sop}&includefield=00880200", HTTP_ACCEPT="application/dicom+json")
    (result,) = response.json()
    assert "BulkDataURI" not in response.content.decode()
    assert "7FE00010" not in result["00880200"]["Value"][0]  # nor inside a sequence
    assert result["00880200"]["Value"][0]["00280010"] == {"vr": "US", "Value": [64]}
