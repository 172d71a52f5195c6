"""GET /v{n}/operations/{operationId}."""

from __future__ import annotations

from typing import Any, ClassVar

from rest_framework.request import Request
from rest_framework.response import Response

from dicomsvc.api.openapi import JSON, dicom_schema
from dicomsvc.api.views import DicomView
from operations.models import ACTIVE_STATUSES
from operations.selectors import operation_get, operation_id_parse
from operations.wire import operation_json, operation_url


class OperationView(DicomView):
    data_actions: ClassVar[dict[str, str]] = {"GET": "read"}

    @dicom_schema("An operation's status", ok={200: [JSON], 202: [JSON]}, errors=(400, 404))
    def get(self, request: Request, **kwargs: Any) -> Response:
        operation = operation_get(operation_id=operation_id_parse(text=kwargs["operation_id"]))
        running = operation.status in ACTIVE_STATUSES
        response = Response(operation_json(operation, api_version=self.api_version), status=202 if running else 200)
        if running:
            response["Location"] = operation_url(version_segment=self.version_segment, operation_id=operation.pk)
        return response
