"""WADO-URI (PS3.18 §9.1): `{base}/wado?requestType=WADO&...` as DICOM or as an image, per partition."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image
from pydicom.pixels import apply_modality_lut

from tests.helpers import dicom_bytes, read, response_bytes, store, uids_of

pytestmark = pytest.mark.django_db

ELE = "1.2.840.10008.1.2.1"


def wado(client, data: bytes, *, prefix: str = "/v2", **params: str):  # noqa: ANN001, ANN201
    study, series, sop = uids_of(data)
    query = {"requestType": "WADO", "studyUID": study, "seriesUID": series, "objectUID": sop, **params}
    headers = {"HTTP_ACCEPT": params.pop("accept")} if "accept" in params else {}
    query.pop("accept", None)
    return client.get(f"{prefix}/wado", query, **headers)


def image(response) -> Image.Image:  # noqa: ANN001
    return Image.open(io.BytesIO(response_bytes(response)))


# --- application/dicom ------------------------------------------------------------------------


def test_dicom_in_explicit_vr_little_endian_by_default(client):
    data = dicom_bytes()
    store(data)
    response = wado(client, data, contentType="application/dicom")
    assert (response.status_code, response["Content-Type"]) == (200, f"application/dicom; transfer-syntax={ELE}")
    assert response_bytes(response) == data


def test_dicom_compressed_is_transcoded_unless_asked_as_stored(client):
    data = dicom_bytes("MR_small_RLE.dcm")
    store(data)
    transcoded = wado(client, data, contentType="application/dicom")
    served = read(response_bytes(transcoded))
    assert served.file_meta.TransferSyntaxUID == ELE
    assert (served.pixel_array == read(data).pixel_array).all()
    stored = wado(client, data, contentType="application/dicom", transferSyntax="*")
    assert stored["Content-Type"] == "application/dicom; transfer-syntax=1.2.840.10008.1.2.5"
    assert response_bytes(stored) == data
    named = wado(client, data, contentType="application/dicom", transferSyntax="1.2.840.10008.1.2.5")
    assert response_bytes(named) == data


def test_dicom_in_a_syntax_it_is_not_stored_in_is_406(client):
    data = dicom_bytes()
    store(data)
    response = wado(client, data, contentType="application/dicom", transferSyntax="1.2.840.10008.1.2.4.91")
    assert response.status_code == 406
    assert "is stored in transfer syntax 1.2.840.10008.1.2.1, not 1.2.840.10008.1.2.4.91" in response.content.decode()
    unknown = wado(client, data, contentType="application/dicom", transferSyntax="1.2.3")
    assert (unknown.status_code, unknown.content.decode()) == (
        406, "The WADO-URI transferSyntax '1.2.3' is not a known transfer syntax."
    )  # fmt: skip


def test_an_instance_without_pixels_is_dicom_by_default(client):
    data = dicom_bytes(PixelData=None)
    store(data)
    response = wado(client, data)
    assert (response.status_code, response_bytes(response)) == (200, data)


# --- images -----------------------------------------------------------------------------------


@pytest.mark.parametrize("params", [{}, {"contentType": "image/jpeg"}, {"contentType": "image/gif,image/jpeg"}])
def test_an_image_is_jpeg_by_default(client, params):
    data = dicom_bytes()
    store(data)
    response = wado(client, data, **params)
    assert (response.status_code, response["Content-Type"]) == (200, "image/jpeg")
    assert (image(response).format, image(response).size) == ("JPEG", (128, 128))


def test_png_and_jpeg_quality(client):
    data = dicom_bytes()
    store(data)
    png = wado(client, data, contentType="image/png")
    assert (png["Content-Type"], image(png).format) == ("image/png", "PNG")
    low = wado(client, data, contentType="image/jpeg", imageQuality="10")
    assert len(response_bytes(low)) < len(response_bytes(wado(client, data, contentType="image/jpeg")))


def test_frame_number_picks_the_frame(client):
    data = dicom_bytes("rtdose_rle.dcm")
    store(data)
    pixels = read(data).pixel_array
    for number in (1, 15):
        response = wado(client, data, contentType="image/png", frameNumber=str(number))
        rendered = np.asarray(image(response)).astype(np.int64)
        # The brightest pixel of the rendered frame is a brightest pixel of that stored frame.
        frame = pixels[number - 1]
        assert frame.flat[int(rendered.argmax())] == frame.max()
    assert wado(client, data, contentType="image/png", frameNumber="16").status_code == 404


@pytest.mark.parametrize(
    ("params", "size"),
    [({"rows": "64"}, (64, 64)), ({"columns": "32"}, (32, 32)), ({"rows": "64", "columns": "32"}, (32, 32)),
     ({"rows": "256"}, (256, 256))],  # fmt: skip
)
def test_rows_and_columns_bound_the_size_keeping_the_aspect(client, params, size):
    data = dicom_bytes()
    store(data)
    assert image(wado(client, data, contentType="image/png", **params)).size == size


def test_rows_and_columns_of_a_wide_image(client):
    data = dicom_bytes(Rows=64, Columns=128, PixelData=np.zeros((64, 128), dtype="<i2").tobytes())
    store(data)
    assert image(wado(client, data, contentType="image/png", rows="32")).size == (64, 32)
    assert image(wado(client, data, contentType="image/png", rows="32", columns="32")).size == (32, 16)


def test_window_center_and_width_replace_the_files_window(client):
    data = dicom_bytes()
    store(data)
    response = wado(client, data, contentType="image/png", windowCenter="40", windowWidth="400")
    ds = read(data)
    values = apply_modality_lut(ds.pixel_array, ds).astype(np.float64)
    expected = (((values - 39.5) / 399 + 0.5) * 255).clip(0, 255).astype(np.uint8)
    assert (np.asarray(image(response)) == expected).all()
    narrow = np.asarray(image(wado(client, data, contentType="image/png", windowCenter="40", windowWidth="1")))
    assert set(np.unique(narrow)) <= {0, 255}


# --- errors -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"requestType": "WADO-RS"}, "The WADO-URI parameter 'requestType' must be 'WADO'."),
        ({"objectUID": ""}, "The WADO-URI parameter 'objectUID' is required."),
        ({"studyUID": "1.2.abc"}, "The specified StudyInstanceUID '1.2.abc' is not a valid DICOM UID."),
        ({"frameNumber": "0"}, "The WADO-URI parameter 'frameNumber' must be a positive integer, not '0'."),
        ({"rows": "abc"}, "The WADO-URI parameter 'rows' must be a positive integer, not 'abc'."),
        ({"windowCenter": "40"}, "The WADO-URI parameters 'windowCenter' and 'windowWidth' must be given together."),
        ({"windowCenter": "x", "windowWidth": "4"}, "The WADO-URI parameter 'windowCenter' must be a decimal number, not 'x'."),
        ({"windowCenter": "4", "windowWidth": "0.5"}, "The WADO-URI parameter 'windowWidth' must be at least 1."),
        ({"imageQuality": "101"}, "The WADO-URI parameter 'imageQuality' must be between 1 and 100."),
        ({"contentType": "application/dicom", "frameNumber": "1"},
         "The WADO-URI parameter 'frameNumber' is not allowed with contentType application/dicom."),
        ({"contentType": "image/jpeg", "transferSyntax": ELE},
         "The WADO-URI parameter 'transferSyntax' is not allowed with contentType image/jpeg."),
        ({"region": "0,0,1,1"}, "The WADO-URI parameter 'region' is not supported."),
    ],
)
def test_bad_parameters_are_400_naming_them(client, params, message):
    data = dicom_bytes()
    store(data)
    response = wado(client, data, **params)
    assert (response.status_code, response.content.decode()) == (400, message)


def test_unsupported_or_unacceptable_types_are_406(client):
    data = dicom_bytes()
    store(data)
    response = wado(client, data, contentType="text/html")
    assert (response.status_code, response.content.decode()) == (
        406, "The WADO-URI contentType 'text/html' is not supported; use application/dicom, image/jpeg or image/png."
    )  # fmt: skip
    refused = wado(client, data, contentType="image/jpeg", accept="application/dicom")
    assert (refused.status_code, refused.content.decode()) == (406, "The request headers are not acceptable")
    assert wado(client, data, contentType="image/jpeg", accept="image/*").status_code == 200


def test_an_unknown_instance_is_404(client):
    data = dicom_bytes()
    response = wado(client, data)
    assert (response.status_code, response.content.decode()) == (404, "The specified instance cannot be found.")


def test_partitions_keep_their_instances(client, partitions_on):
    alice = dicom_bytes()
    store(alice, partition="alice")
    store(dicom_bytes(), partition="bob")
    response = wado(client, alice, prefix="/v2/partitions/alice", contentType="application/dicom")
    assert response_bytes(response) == alice
    assert wado(client, alice, prefix="/v2/partitions/bob").status_code == 404
    missing = wado(client, alice)
    assert (missing.status_code, missing.content.decode()) == (400, "PartitionName value is missing in the route segment.")
