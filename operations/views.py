"""GET /v{n}/operations/{operationId}."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from rest_framework.request import Request
from rest_framework.response import Response

from dicomsvc.api.views import DicomView
from operations.models import ACTIVE_STATUSES, Operation, OperationStatus
from operations.selectors import operation_get, operation_id_parse


def _time(value: Any) -> str:
    return value.isoformat().replace("+00:00", "Z")


def operation_url(*, version_segment: str, operation_id: Any) -> str:
    return f"{settings.DICOM_PUBLIC_BASE_URL}/v{version_segment}/operations/{operation_id.hex}"


def operation_reference(*, version_segment: str, operation: Operation) -> dict[str, str]:
    return {"id": operation.pk.hex, "href": operation_url(version_segment=version_segment, operation_id=operation.pk)}


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
        "results": operation.results,
    }
    return {key: value for key, value in body.items() if value is not None}


class OperationView(DicomView):
    def get(self, request: Request, **kwargs: Any) -> Response:
        operation = operation_get(operation_id=operation_id_parse(text=kwargs["operation_id"]))
        running = operation.status in ACTIVE_STATUSES
        response = Response(operation_json(operation, api_version=self.api_version), status=202 if running else 200)
        if running:
            response["Location"] = operation_url(version_segment=self.version_segment, operation_id=operation.pk)
        return response
