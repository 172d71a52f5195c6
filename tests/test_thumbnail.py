"""Thumbnails of studies, series and instances: which image, which size, which format, and caching."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import pytest
from PIL import Image
from pydicom.uid import generate_uid

from tests.helpers import base, dicom_bytes, instance_url, read, store, uids_of

pytestmark = pytest.mark.django_db

JPEG, PNG = "image/jpeg", "image/png"
# Each syntax's test file, and its STOW status (202: stored with a warning for an invalid value).
SYNTAXES = [
    ("CT_small.dcm", "explicit VR little endian", 200),
    ("MR_small_implicit.dcm", "implicit VR little endian", 202),
    ("MR_small_bigendian.dcm", "explicit VR big endian", 200),
    ("SC_rgb_jpeg_dcmtk.dcm", "JPEG baseline", 200),
    ("SC_rgb_jpeg_gdcm.dcm", "JPEG lossless", 200),
    ("MR_small_jpeg_ls_lossless.dcm", "JPEG-LS lossless", 200),
    ("JPEG2000.dcm", "JPEG 2000", 200),
    ("MR_small_RLE.dcm", "RLE lossless", 200),
]


def image_of(response: Any) -> Image.Image:
    return Image.open(io.BytesIO(response.content))


def thumbnail(client: Any, url: str, accept: str | None = JPEG, **params: str) -> Any:
    """GET the thumbnail; `params` are query parameters, or headers when named HTTP_*."""
    headers = {key: value for key, value in params.items() if key.startswith("HTTP_")}
    query = {key: value for key, value in params.items() if not key.startswith("HTTP_")}
    if accept:
        headers["HTTP_ACCEPT"] = accept
    return client.get(f"{url}/thumbnail", query, **headers)


@pytest.mark.parametrize(("name", "syntax", "status"), SYNTAXES, ids=[s[1] for s in SYNTAXES])
@pytest.mark.parametrize("accept", [JPEG, PNG])
def test_each_transfer_syntax_renders_to_a_thumbnail_that_fits_128(client, name, syntax, status, accept):
    data = dicom_bytes(name)
    store(data, status=status)
    rows, columns = read(data).Rows, read(data).Columns
    response = thumbnail(client, instance_url(data), accept)
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == accept
    image = image_of(response)
    assert image.format == {JPEG: "JPEG", PNG: "PNG"}[accept]
    scale = min(128 / columns, 128 / rows)
    assert image.size == (round(columns * scale), round(rows * scale))
    assert np.asarray(image).std() > 0  # a picture, not a blank


def test_viewport_sets_the_size_keeping_the_aspect_ratio(client):
    data = dicom_bytes("JPEG2000.dcm")  # 256 wide, 1024 high
    store(data)
    assert image_of(thumbnail(client, instance_url(data), viewport="64,64")).size == (16, 64)
    assert image_of(thumbnail(client, instance_url(data), viewport="512,400")).size == (100, 400)
    cropped = thumbnail(client, instance_url(data), PNG, viewport="50,50,0,0,100,100")
    assert image_of(cropped).size == (50, 50)


@pytest.mark.parametrize("viewport", ["64", "0,64", "64,64,1,2", "a,b", "5000,10", "64,64,0,0,0,10", "-1,64"])
def test_a_bad_viewport_is_400(client, viewport):
    data = dicom_bytes()
    store(data)
    response = thumbnail(client, instance_url(data), viewport=viewport)
    assert response.status_code == 400
    assert response.content.decode().startswith(f"The viewport '{viewport}' is not valid")


def test_a_region_outside_the_image_is_400(client):
    data = dicom_bytes()
    store(data)
    response = thumbnail(client, instance_url(data), viewport="64,64,500,500,10,10")
    assert (response.status_code, response.content.decode()) == (
        400, "The viewport's source region lies outside the image."
    )


def test_accept_chooses_the_format(client):
    data = dicom_bytes()
    store(data)
    url = instance_url(data)
    assert thumbnail(client, url, None)["Content-Type"] == JPEG
    assert thumbnail(client, url, "*/*")["Content-Type"] == JPEG
    assert thumbnail(client, url, "image/*")["Content-Type"] == JPEG
    response = thumbnail(client, url, "application/dicom")
    assert (response.status_code, response.content.decode()) == (406, "The request headers are not acceptable")


def test_a_study_shows_the_middle_image_of_its_lowest_numbered_series(client):
    study = generate_uid()
    second, first = generate_uid(), generate_uid()
    files = [
        dicom_bytes(StudyInstanceUID=study, SeriesInstanceUID=series, SeriesNumber=number, InstanceNumber=index)
        for series, number in ((second, 2), (first, 1))
        for index in (3, 1, 2)
    ]
    rows = store(*files)
    middle = next(row for row, data in zip(rows, files, strict=True) if read(data).SeriesInstanceUID == first
                  and read(data).InstanceNumber == 2)
    study_thumb = thumbnail(client, f"/v2/studies/{study}")
    series_thumb = thumbnail(client, f"/v2/studies/{study}/series/{first}")
    instance_thumb = thumbnail(client, f"/v2/studies/{study}/series/{first}/instances/{middle.sop_instance_uid}")
    assert study_thumb.status_code == series_thumb.status_code == instance_thumb.status_code == 200
    assert study_thumb["ETag"] == series_thumb["ETag"] == instance_thumb["ETag"]
    assert study_thumb["ETag"].startswith(f'"{middle.watermark}-1-jpeg-128x128')
    assert study_thumb.content == instance_thumb.content
    other = thumbnail(client, f"/v2/studies/{study}/series/{second}")
    assert other["ETag"] != study_thumb["ETag"]


def test_a_multiframe_instance_shows_its_middle_frame(client):
    data = dicom_bytes("examples_ybr_color.dcm")  # 30 frames of 320 x 240, JPEG baseline
    (row,) = store(data)
    response = thumbnail(client, instance_url(data), PNG)
    assert response["ETag"].startswith(f'"{row.watermark}-15-png-128x128-all"')
    rendered = client.get(f"{instance_url(data)}/frames/15/rendered", HTTP_ACCEPT=PNG)
    expected = image_of(rendered).resize((128, 96), Image.Resampling.LANCZOS)
    assert np.array_equal(np.asarray(image_of(response)), np.asarray(expected))
    other = image_of(client.get(f"{instance_url(data)}/frames/1/rendered", HTTP_ACCEPT=PNG))
    assert not np.array_equal(np.asarray(other.resize((128, 96), Image.Resampling.LANCZOS)), np.asarray(expected))


def test_an_etag_answers_304_and_the_cache_headers(client):
    data = dicom_bytes()
    store(data)
    url = instance_url(data)
    first = thumbnail(client, url)
    assert (first["Cache-Control"], first["Vary"]) == ("private, max-age=3600", "Accept")
    again = thumbnail(client, url, HTTP_IF_NONE_MATCH=first["ETag"])
    assert (again.status_code, again.content, again["ETag"]) == (304, b"", first["ETag"])
    weak = thumbnail(client, url, HTTP_IF_NONE_MATCH=f'"other", W/{first["ETag"]}')
    assert weak.status_code == 304
    png = thumbnail(client, url, PNG, HTTP_IF_NONE_MATCH=first["ETag"])
    assert png.status_code == 200  # another representation, another tag
    resized = thumbnail(client, url, HTTP_IF_NONE_MATCH=first["ETag"], viewport="64,64")
    assert resized.status_code == 200


def test_no_image_no_thumbnail(client):
    data = dicom_bytes("rtplan.dcm")
    store(data, status=202)
    study, series, instance = uids_of(data)
    response = thumbnail(client, f"/v2/studies/{study}")
    assert (response.status_code, response.content.decode()) == (404, "The specified frame cannot be found.")
    response = thumbnail(client, f"/v2/studies/{study}/series/{series}/instances/{generate_uid()}")
    assert (response.status_code, response.content.decode()) == (404, "The specified instance cannot be found.")


def test_thumbnails_are_partition_scoped(client, partitions_on):
    data = dicom_bytes()
    store(data, partition="alice")
    store(dicom_bytes(), partition="bob")
    study = uids_of(data)[0]
    assert thumbnail(client, f"{base('alice')}/studies/{study}").status_code == 200
    response = thumbnail(client, f"{base('bob')}/studies/{study}")
    assert (response.status_code, response.content.decode()) == (404, "The specified study cannot be found.")
