"""A request without an Accept header accepts anything (RFC 9110 §12.5.1), on every DICOMweb route."""

from __future__ import annotations

import json

import pytest

from tests.helpers import (
    MULTIPART_DICOM,
    dicom_bytes,
    instance_url,
    multipart_body,
    multipart_parts,
    response_bytes,
    store,
    uids_of,
)

pytestmark = pytest.mark.django_db


def get(client, url: str):  # noqa: ANN001, ANN201
    response = client.get(url)
    assert "HTTP_ACCEPT" not in response.wsgi_request.META  # the client sent none
    return response


def test_stow_without_accept_answers_dicom_json(client):
    data = dicom_bytes()
    response = client.post("/v2/studies", data=multipart_body([data]), content_type=MULTIPART_DICOM)
    assert "HTTP_ACCEPT" not in response.wsgi_request.META
    assert (response.status_code, response["Content-Type"]) == (200, "application/dicom+json")
    assert response.json()["00081199"]["Value"][0]["00081155"]["Value"] == [uids_of(data)[2]]


@pytest.mark.parametrize("route", ["studies?{q}", "series?{q}", "instances?{q}", "studies/{study}/series",
                                   "studies/{study}/instances", "studies/{study}/series/{series}/instances"])
def test_qido_without_accept_answers_dicom_json(client, route):
    data = dicom_bytes()
    store(data)
    study, series, sop = uids_of(data)
    response = get(client, "/v2/" + route.format(q=f"StudyInstanceUID={study}", study=study, series=series))
    assert (response.status_code, response["Content-Type"]) == (200, "application/dicom+json")
    assert {item["0020000D"]["Value"][0] for item in json.loads(response_bytes(response))} == {study}


@pytest.mark.parametrize("level", ["study", "series", "instance"])
def test_wado_without_accept_serves_the_stored_files_multipart(client, level):
    data = dicom_bytes("MR_small_RLE.dcm")
    store(data)
    study, series, _ = uids_of(data)
    url = {"study": f"/v2/studies/{study}", "series": f"/v2/studies/{study}/series/{series}",
           "instance": instance_url(data)}[level]  # fmt: skip
    response = get(client, url)
    assert response.status_code == 200
    ((headers, body),) = multipart_parts(response["Content-Type"], response_bytes(response))
    assert (headers["content-type"], body) == ("application/dicom; transfer-syntax=1.2.840.10008.1.2.5", data)


@pytest.mark.parametrize("suffix", ["/metadata", "/series/{series}/metadata", "/series/{series}/instances/{sop}/metadata"])
def test_metadata_without_accept(client, suffix):
    data = dicom_bytes()
    store(data)
    study, series, sop = uids_of(data)
    response = get(client, f"/v2/studies/{study}" + suffix.format(series=series, sop=sop))
    assert (response.status_code, response["Content-Type"]) == (200, "application/dicom+json")
    assert json.loads(response_bytes(response))[0]["00080018"]["Value"] == [sop]


def test_frames_without_accept_are_the_stored_frames_multipart(client):
    data = dicom_bytes()
    store(data)
    response = get(client, f"{instance_url(data)}/frames/1")
    ((headers, body),) = multipart_parts(response["Content-Type"], response_bytes(response))
    assert headers["content-type"] == "application/octet-stream; transfer-syntax=1.2.840.10008.1.2.1"
    assert len(body) == 128 * 128 * 2


@pytest.mark.parametrize("suffix", ["/rendered", "/frames/1/rendered"])
def test_rendered_without_accept_is_jpeg(client, suffix):
    data = dicom_bytes()
    store(data)
    response = get(client, instance_url(data) + suffix)
    assert (response.status_code, response["Content-Type"]) == (200, "image/jpeg")
    assert response_bytes(response)[:3] == b"\xff\xd8\xff"
