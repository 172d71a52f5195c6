"""WADO-RS rendered: JPEG/PNG of a frame, Accept and quality rules."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from tests.helpers import dicom_bytes, instance_url, store

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("name", ["CT_small.dcm", "MR_small_RLE.dcm", "SC_rgb_rle_2frame.dcm", "JPEG2000.dcm"])
def test_rendered_jpeg_and_png(client, name):
    data = dicom_bytes(name)
    store(data)
    jpeg = client.get(f"{instance_url(data)}/rendered")
    assert (jpeg.status_code, jpeg["Content-Type"]) == (200, "image/jpeg")
    image = Image.open(io.BytesIO(jpeg.content))
    assert image.format == "JPEG"
    png = client.get(f"{instance_url(data)}/rendered", HTTP_ACCEPT="image/png")
    assert Image.open(io.BytesIO(png.content)).format == "PNG"
    assert Image.open(io.BytesIO(png.content)).size == image.size
    low = client.get(f"{instance_url(data)}/rendered?quality=10", HTTP_ACCEPT="image/jpeg")
    assert len(low.content) < len(jpeg.content)


def test_rendered_frame_and_errors(client):
    data = dicom_bytes("SC_rgb_rle_2frame.dcm")
    store(data)
    url = instance_url(data)
    assert client.get(f"{url}/frames/2/rendered").status_code == 200
    response = client.get(f"{url}/frames/3/rendered")
    assert (response.status_code, response.content.decode()) == (404, "The specified frame cannot be found.")
    response = client.get(f"{url}/rendered?quality=0")
    assert (response.status_code, response.content.decode()) == (400, "Image quality must be between 1 and 100 inclusive")
    assert client.get(f"{url}/rendered", HTTP_ACCEPT="image/gif").status_code == 406
    response = client.get(f"{url}/rendered", HTTP_ACCEPT="image/jpeg, image/png")
    assert response.content.decode() == "The request contains multiple accept headers, which is not supported."


def test_rendered_without_pixel_data_is_404(client):
    data = dicom_bytes("rtplan.dcm", PatientID="RT")
    store(data, status=202)  # stored with a warning
    assert client.get(f"{instance_url(data)}/rendered").status_code == 404
