"""Helpers shared by the bulk update tests: store studies over HTTP, start updates, read blobs."""

from __future__ import annotations

import io
from typing import Any

import pydicom
from pydicom.uid import generate_uid

from studies.blobstore import blob_name, blob_open
from studies.models import Instance
from tests.conftest import dicom_bytes

DICOM_JSON = "application/dicom+json"


def prefix(partition: str | None = None, version: str = "v2") -> str:
    return f"/{version}/partitions/{partition}" if partition else f"/{version}"


def store(client: Any, data: bytes, *, partition: str | None = None) -> None:
    response = client.post(
        f"{prefix(partition)}/studies", data=data, content_type="application/dicom", HTTP_ACCEPT=DICOM_JSON
    )
    assert response.status_code == 200, response.content


def store_study(
    client: Any, count: int, *, name: str = "CT_small.dcm", partition: str | None = None,
    study_uid: str | None = None, **overrides: object,
) -> tuple[str, list[bytes]]:
    """`count` instances of one study (two series); returns the study UID and the stored bytes."""
    study_uid = study_uid or generate_uid()
    series = [generate_uid(), generate_uid()]
    files = []
    for index in range(count):
        data = dicom_bytes(
            name, StudyInstanceUID=study_uid, SeriesInstanceUID=series[index % 2], InstanceNumber=index + 1,
            **overrides,
        )
        store(client, data, partition=partition)
        files.append(data)
    return study_uid, files


def start(
    client: Any, body: Any, *, partition: str | None = None, version: str = "v2"
) -> Any:
    return client.post(f"{prefix(partition, version)}/studies/$bulkUpdate", data=body, format="json")


def patient_name_change(name: str) -> dict[str, Any]:
    return {"00100010": {"vr": "PN", "Value": [{"Alphabetic": name}]}}


def blob_bytes(instance: Instance, watermark: int) -> bytes:
    with blob_open(name=blob_name(partition_key=instance.partition_id, watermark=watermark)) as fileobj:
        return fileobj.read()


def read(data: bytes) -> pydicom.Dataset:
    return pydicom.dcmread(io.BytesIO(data))
