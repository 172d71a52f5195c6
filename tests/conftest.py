"""Shared fixtures: a fresh blob directory per test, new UIDs per test file, API client."""

from __future__ import annotations

import io
from pathlib import Path

import pydicom
import pytest
from django.core.files.storage import storages
from pydicom.data import get_testdata_file
from pydicom.uid import generate_uid
from rest_framework.test import APIClient

from partitions.selectors import partition_cache_clear


@pytest.fixture(autouse=True)
def _isolated_storage(tmp_path: Path, settings):  # noqa: ANN001
    """Blobs of each test go to their own directory (or bucket prefix) and vanish with it."""
    if settings.DICOM_STORAGE_BACKEND == "local":
        settings.STORAGES = {
            **settings.STORAGES,
            "dicom": {
                "BACKEND": "studies.blobstore.DurableFileSystemStorage",
                "OPTIONS": {"location": str(tmp_path / "blobs")},
            },
        }
        storages._storages.pop("dicom", None)
        storages.backends = settings.STORAGES
    partition_cache_clear()
    yield
    storages._storages.pop("dicom", None)
    partition_cache_clear()


@pytest.fixture
def client() -> APIClient:
    return APIClient()


def dicom_bytes(name: str = "CT_small.dcm", **overrides: object) -> bytes:
    """A pydicom test file with fresh Study/Series/SOP UIDs (and any attribute overrides)."""
    ds = pydicom.dcmread(get_testdata_file(name))
    ds.StudyInstanceUID = overrides.pop("StudyInstanceUID", None) or generate_uid()
    ds.SeriesInstanceUID = overrides.pop("SeriesInstanceUID", None) or generate_uid()
    sop = overrides.pop("SOPInstanceUID", None) or generate_uid()
    ds.SOPInstanceUID = sop
    if "MediaStorageSOPInstanceUID" in ds.file_meta:
        ds.file_meta.MediaStorageSOPInstanceUID = sop
    for key, value in overrides.items():
        if value is None:
            if key in ds:
                delattr(ds, key)
        else:
            setattr(ds, key, value)
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


def uids_of(data: bytes) -> tuple[str, str, str]:
    ds = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True)
    return str(ds.StudyInstanceUID), str(ds.SeriesInstanceUID), str(ds.SOPInstanceUID)


def multipart_body(parts: list[bytes], boundary: str = "XBOUNDARYX", part_type: str | None = "application/dicom") -> bytes:
    out = b""
    for data in parts:
        out += f"--{boundary}\r\n".encode()
        if part_type:
            out += f"Content-Type: {part_type}\r\n".encode()
        out += b"\r\n" + data + b"\r\n"
    out += f"--{boundary}--".encode()
    return out


def multipart_parts(content_type: str, body: bytes) -> list[tuple[dict[str, str], bytes]]:
    """Split a multipart/related response into (headers, body) pairs, strictly."""
    boundary = content_type.split("boundary=")[1].split(";")[0].strip().strip('"')
    delim = f"--{boundary}".encode()
    assert body.startswith(delim + b"\r\n"), body[:80]
    assert body.endswith(delim + b"--"), body[-80:]
    chunks = body[: -len(delim + b"--")].split(b"\r\n" + delim + b"\r\n")
    chunks[0] = chunks[0][len(delim) + 2 :]
    out = []
    for i, chunk in enumerate(chunks):
        if i == len(chunks) - 1:
            assert chunk.endswith(b"\r\n")
            chunk = chunk[:-2]
        head, _, data = chunk.partition(b"\r\n\r\n")
        headers = {}
        for line in head.decode().split("\r\n"):
            k, _, v = line.partition(":")
            headers[k.strip().lower()] = v.strip()
        out.append((headers, data))
    return out


def response_bytes(response) -> bytes:  # noqa: ANN001
    if getattr(response, "streaming", False):
        if getattr(response, "is_async", False):
            from asgiref.sync import async_to_sync

            async def collect() -> bytes:
                return b"".join([chunk async for chunk in response.streaming_content])

            return async_to_sync(collect)()
        return b"".join(response.streaming_content)
    return response.content


MULTIPART_DICOM = 'multipart/related; type="application/dicom"; boundary=XBOUNDARYX'
DICOM_JSON = "application/dicom+json"


def stow(client, parts: list[bytes], *, url: str = "/v2/studies", **headers: str):  # noqa: ANN001, ANN201
    headers.setdefault("HTTP_ACCEPT", DICOM_JSON)
    return client.post(url, data=multipart_body(parts), content_type=MULTIPART_DICOM, **headers)


def instance_url(data: bytes, prefix: str = "/v2") -> str:
    st, se, sop = uids_of(data)
    return f"{prefix}/studies/{st}/series/{se}/instances/{sop}"
