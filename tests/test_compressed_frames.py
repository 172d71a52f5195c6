"""Frames and instances in their stored compression: the stored bytes, never re-encoded; 406 otherwise."""

from __future__ import annotations

import io

import pydicom
import pytest
from pydicom.encaps import generate_frames
from pydicom.uid import generate_uid

from tests.helpers import dicom_bytes, instance_url, multipart_parts, response_bytes, store

pytestmark = pytest.mark.django_db

# (pydicom test file, media type, its transfer syntax)
SAMPLES = [
    ("SC_rgb_jpeg_dcmtk.dcm", "image/jpeg", "1.2.840.10008.1.2.4.50"),  # baseline
    ("JPGExtended.dcm", "image/jpeg", "1.2.840.10008.1.2.4.51"),  # extended
    ("SC_rgb_jpeg_gdcm.dcm", "image/jpeg", "1.2.840.10008.1.2.4.70"),  # lossless SV1
    ("MR_small_jpeg_ls_lossless.dcm", "image/jls", "1.2.840.10008.1.2.4.80"),
    ("JPEGLSNearLossless_08.dcm", "image/jls", "1.2.840.10008.1.2.4.81"),
    ("MR_small_jp2klossless.dcm", "image/jp2", "1.2.840.10008.1.2.4.90"),
    ("JPEG2000.dcm", "image/jp2", "1.2.840.10008.1.2.4.91"),
    ("MR_small_RLE.dcm", "image/x-dicom-rle", "1.2.840.10008.1.2.5"),
    ("rtdose_rle.dcm", "image/x-dicom-rle", "1.2.840.10008.1.2.5"),  # 15 frames
]
SAMPLE_IDS = [name for name, _media, _ts in SAMPLES]
# Syntaxes pydicom ships no test file in, written as `file@syntax`: a stream of the file's own
# syntax that is also a valid stream of the other one (a JPEG process 14 SV1 stream is a process
# 14 stream; a JPEG 2000 Part 1 codestream is a Part 2 codestream), labelled with it.
RELABELLED = [
    ("SC_rgb_jpeg_gdcm.dcm@1.2.840.10008.1.2.4.57", "image/jpeg", "1.2.840.10008.1.2.4.57"),  # lossless
    ("MR_small_jp2klossless.dcm@1.2.840.10008.1.2.4.92", "image/jpx", "1.2.840.10008.1.2.4.92"),
    ("JPEG2000.dcm@1.2.840.10008.1.2.4.93", "image/jpx", "1.2.840.10008.1.2.4.93"),
]


def sample_bytes(name: str) -> bytes:
    # JPEGLSNearLossless_08.dcm has no PatientID, which the store requires.
    name, _, syntax = name.partition("@")
    data = dicom_bytes(name, PatientID="FRAMES")
    if not syntax:
        return data
    ds = pydicom.dcmread(io.BytesIO(data))
    ds.file_meta.TransferSyntaxUID = syntax
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


def stored_frames(data: bytes) -> list[bytes]:
    ds = pydicom.dcmread(io.BytesIO(data))
    return list(generate_frames(ds.PixelData, number_of_frames=int(ds.get("NumberOfFrames", 1) or 1)))


@pytest.mark.parametrize(("name", "media", "ts"), SAMPLES + RELABELLED, ids=SAMPLE_IDS + [s[0] for s in RELABELLED])
@pytest.mark.parametrize("with_syntax", [False, True], ids=["type only", "with transfer-syntax"])
def test_every_frame_in_its_stored_compression(client, name, media, ts, with_syntax):
    data = sample_bytes(name)
    store(data)
    frames = stored_frames(data)
    numbers = list(range(1, len(frames) + 1))
    accept = f'multipart/related; type="{media}"' + (f"; transfer-syntax={ts}" if with_syntax else "")

    response = client.get(f"{instance_url(data)}/frames/{','.join(map(str, numbers))}", HTTP_ACCEPT=accept)

    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith(f'multipart/related; type="{media}"; boundary=')
    parts = multipart_parts(response["Content-Type"], response_bytes(response))
    assert [headers["content-type"] for headers, _ in parts] == [f"{media}; transfer-syntax={ts}"] * len(frames)
    assert [body for _, body in parts] == frames


@pytest.mark.parametrize(("name", "media", "ts"), SAMPLES[:1] + SAMPLES[3:4] + SAMPLES[6:8] + RELABELLED[1:2], ids=lambda v: str(v))
def test_one_frame_single_part(client, name, media, ts):
    data = sample_bytes(name)
    store(data)
    response = client.get(f"{instance_url(data)}/frames/1", HTTP_ACCEPT=media)
    assert (response.status_code, response["Content-Type"]) == (200, f"{media}; transfer-syntax={ts}")
    assert response_bytes(response) == stored_frames(data)[0]


def test_first_acceptable_type_that_fits_the_stored_syntax_wins(client):
    data = dicom_bytes("JPEG2000.dcm")
    store(data)
    accept = 'multipart/related; type="image/jpeg", multipart/related; type="image/jp2"; q=0.9, */*; q=0.5'
    response = client.get(f"{instance_url(data)}/frames/1", HTTP_ACCEPT=accept)
    ((headers, body),) = multipart_parts(response["Content-Type"], response_bytes(response))
    assert headers["content-type"] == "image/jp2; transfer-syntax=1.2.840.10008.1.2.4.91"
    assert body == stored_frames(data)[0]
    # An octet-stream range of equal q is the fallback: the compressed type names the stored bytes.
    accept = 'multipart/related; type="application/octet-stream"; transfer-syntax=*, multipart/related; type="image/jp2"'
    response = client.get(f"{instance_url(data)}/frames/1", HTTP_ACCEPT=accept)
    assert multipart_parts(response["Content-Type"], response_bytes(response))[0][0]["content-type"].startswith(
        "image/jp2"
    )
    # Asked for JPEG or octet-stream in Explicit VR LE, the frame is decoded as before.
    accept = 'multipart/related; type="image/jpeg", multipart/related; type="application/octet-stream"; q=0.5'
    response = client.get(f"{instance_url(data)}/frames/1", HTTP_ACCEPT=accept)
    ((headers, body),) = multipart_parts(response["Content-Type"], response_bytes(response))
    assert headers["content-type"] == "application/octet-stream; transfer-syntax=1.2.840.10008.1.2.1"
    assert body == pydicom.dcmread(io.BytesIO(data)).pixel_array.astype("<u2").tobytes()


@pytest.mark.parametrize(
    ("name", "accept", "stored_as"),
    [
        ("CT_small.dcm", 'multipart/related; type="image/jpeg"', "1.2.840.10008.1.2.1"),
        ("JPEG2000.dcm", 'multipart/related; type="image/jpeg"', "1.2.840.10008.1.2.4.91"),
        ("JPEG2000.dcm", 'multipart/related; type="image/jpx"', "1.2.840.10008.1.2.4.91"),
        ("SC_rgb_jpeg_dcmtk.dcm", 'multipart/related; type="image/jpeg"; transfer-syntax=1.2.840.10008.1.2.4.70',
         "1.2.840.10008.1.2.4.50"),
        ("MR_small_RLE.dcm", "image/jls", "1.2.840.10008.1.2.5"),
    ],
)
def test_a_frame_not_stored_in_the_asked_compression_is_406(client, name, accept, stored_as):
    data = sample_bytes(name)
    store(data)
    response = client.get(f"{instance_url(data)}/frames/1", HTTP_ACCEPT=accept)
    assert response.status_code == 406
    message = response.content.decode()
    assert message.startswith(f"The frames are stored in transfer syntax {stored_as}, which cannot be served as ")
    assert "the server does not re-encode pixel data" in message


def test_a_transfer_syntax_outside_the_media_type_is_not_acceptable(client):
    data = dicom_bytes("JPEG2000.dcm")
    store(data)
    accept = 'multipart/related; type="image/jp2"; transfer-syntax=1.2.840.10008.1.2.4.50'
    response = client.get(f"{instance_url(data)}/frames/1", HTTP_ACCEPT=accept)
    assert (response.status_code, response.content.decode()) == (406, "The request headers are not acceptable")


def test_several_frames_need_a_multipart_type(client):
    data = dicom_bytes("rtdose_rle.dcm")
    store(data)
    response = client.get(f"{instance_url(data)}/frames/1,2", HTTP_ACCEPT="image/x-dicom-rle")
    assert response.status_code == 400
    assert response.content.decode().startswith("The accept header is supported for single frame retrieval")


# --- instances, series and studies in a compressed transfer syntax ----------------------------


@pytest.mark.parametrize(("name", "media", "ts"), SAMPLES[::2], ids=SAMPLE_IDS[::2])
def test_instance_in_its_stored_compressed_syntax(client, name, media, ts):
    data = sample_bytes(name)
    store(data)
    single = client.get(instance_url(data), HTTP_ACCEPT=f"application/dicom; transfer-syntax={ts}")
    assert (single.status_code, single["Content-Type"]) == (200, f"application/dicom; transfer-syntax={ts}")
    assert response_bytes(single) == data
    multi = client.get(instance_url(data), HTTP_ACCEPT=f'multipart/related; type="application/dicom"; transfer-syntax={ts}')
    ((headers, body),) = multipart_parts(multi["Content-Type"], response_bytes(multi))
    assert (headers["content-type"], body) == (f"application/dicom; transfer-syntax={ts}", data)


def test_a_compressed_syntax_the_file_is_not_in_is_406(client):
    data = dicom_bytes("CT_small.dcm")
    store(data)
    sop = pydicom.dcmread(io.BytesIO(data)).SOPInstanceUID
    response = client.get(instance_url(data), HTTP_ACCEPT="application/dicom; transfer-syntax=1.2.840.10008.1.2.4.50")
    assert response.status_code == 406
    assert response.content.decode() == (
        f"The instance {sop} is stored in transfer syntax 1.2.840.10008.1.2.1, not 1.2.840.10008.1.2.4.50; the "
        "server transcodes only to 1.2.840.10008.1.2.1. Request transfer-syntax=* for the stored file."
    )


def test_study_and_series_in_a_compressed_syntax(client):
    study, series = generate_uid(), generate_uid()
    j2k = [dicom_bytes("JPEG2000.dcm", StudyInstanceUID=study, SeriesInstanceUID=series) for _ in range(2)]
    store(*j2k)
    accept = 'multipart/related; type="application/dicom"; transfer-syntax=1.2.840.10008.1.2.4.91'
    for url in (f"/v2/studies/{study}", f"/v2/studies/{study}/series/{series}"):
        response = client.get(url, HTTP_ACCEPT=accept)
        bodies = sorted(body for _, body in multipart_parts(response["Content-Type"], response_bytes(response)))
        assert bodies == sorted(j2k)
    # One instance of the study in another syntax: 406 before any byte, none re-encoded.
    store(dicom_bytes("CT_small.dcm", StudyInstanceUID=study))
    response = client.get(f"/v2/studies/{study}", HTTP_ACCEPT=accept)
    assert response.status_code == 406
    assert "is stored in transfer syntax 1.2.840.10008.1.2.1, not 1.2.840.10008.1.2.4.91" in response.content.decode()
    assert client.get(f"/v2/studies/{study}/series/{series}", HTTP_ACCEPT=accept).status_code == 200
