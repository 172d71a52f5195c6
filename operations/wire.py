"""The JSON of operations: the reference a starting request answers with, and the status resource."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.conf import settings

from operations.models import Operation, OperationStatus


def _time(value: dt.datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def operation_url(*, version_segment: str, operation_id: Any) -> str:
    return f"{settings.DICOM_PUBLIC_BASE_URL}/v{version_segment}/operations/{operation_id.hex}"


def operation_reference(*, version_segment: str, operation: Operation) -> dict[str, str]:
    return {"id": operation.pk.hex, "href": operation_url(version_segment=version_segment, operation_id=operation.pk)}


def _results(operation: Operation) -> dict[str, Any] | None:
    """`results`, with why a failed operation failed in `errors` (the bulk update's per-study
    errors are there already; a run that stopped adds its reason)."""
    if operation.status != OperationStatus.FAILED or not operation.errors:
        return operation.results
    results = dict(operation.results or {})
    errors = list(results.get("errors") or [])
    results["errors"] = errors + [error for error in operation.errors if error not in errors]
    return results


def operation_json(operation: Operation, *, api_version: int) -> dict[str, Any]:
    status = operation.status
    if status == OperationStatus.SUCCEEDED and api_version < 2:
        status = "completed"
    body: dict[str, Any] = {
        "operationId": operation.pk.hex,
        "type": operation.type,
        "createdTime": _time(operation.created_time),
        "lastUpdatedTime": _time(operation.last_updated_time),
        "status": status,
        "percentComplete": operation.percent_complete,
        "resources": operation.resources,
        "results": _results(operation),
    }
    return {key: value for key, value in body.items() if value is not None}
