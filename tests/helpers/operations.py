"""Long-running operations: start a bulk update or an export, run it, read what it wrote."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

from django.utils import timezone

from operations.models import Operation
from operations.runner import operation_run
from studies.blobstore import blob_name, blob_open
from studies.models import Instance
from tests.helpers.dicom import uids_of
from tests.helpers.http import ORIGINAL, base, instance_url, response_bytes


def start(client: Any, body: Any, *, partition: str | None = None, version: str = "v2") -> Any:
    """POST studies/$bulkUpdate."""
    return client.post(f"{base(partition, version)}/studies/$bulkUpdate", data=body, format="json")


def patient_name_change(name: str) -> dict[str, Any]:
    return {"00100010": {"vr": "PN", "Value": [{"Alphabetic": name}]}}


def blob_bytes(instance: Instance, watermark: int) -> bytes:
    with blob_open(name=blob_name(partition_key=instance.partition_id, watermark=watermark)) as fileobj:
        return fileobj.read()


def export_body(values: list[str], path: Path | str) -> dict:
    return {
        "source": {"type": "identifiers", "settings": {"values": values}},
        "destination": {"type": "filesystem", "settings": {"path": str(path)}},
    }


def post_export(client: Any, body: Any, prefix: str = "/v2") -> Any:
    payload = body if isinstance(body, str) else json.dumps(body)
    return client.post(f"{prefix}/export", data=payload, content_type="application/json")


def run_export(response: Any, *, after_crash: bool = False) -> Operation:
    """Run the operation an accepted export request created, as the worker would."""
    assert response.status_code == 202, response.content
    operation_id = response.json()["id"]
    if after_crash:
        # The dead runner's lease must lapse before a redelivered task may take over.
        Operation.objects.filter(pk=operation_id).update(heartbeat_time=timezone.now() - dt.timedelta(hours=1))
    operation_run(operation_id=operation_id)
    return Operation.objects.get(pk=operation_id)


class WorkerKilled(BaseException):
    """Stands for the worker process dying: the runner does not catch it, the row stays running."""


def wado_original(client: Any, data: bytes, prefix: str = "/v2") -> bytes:
    response = client.get(instance_url(data, prefix), HTTP_ACCEPT=ORIGINAL)
    assert response.status_code == 200
    return response_bytes(response)


def result_path(folder: Path, data: bytes) -> Path:
    study, series, sop = uids_of(data)
    return folder / "results" / study / series / f"{sop}.dcm"


def files_under(folder: Path) -> set[Path]:
    return {path for path in folder.rglob("*") if path.is_file()}
