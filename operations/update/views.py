"""POST /v{n}[/partitions/{partitionName}]/studies/$bulkUpdate: start a bulk update of patient and study attributes."""

from __future__ import annotations

from typing import Any, ClassVar

from rest_framework.request import Request
from rest_framework.response import Response

from dicomsvc.api.openapi import JSON, dicom_schema
from dicomsvc.errors import NotFound
from operations.update.services import update_create
from operations.wire import operation_reference
from partitions.api import PartitionedView

# Microsoft serves the action in every version but answers 404 below v2.
MINIMUM_VERSION = 2


class BulkUpdateView(PartitionedView):
    """`/studies/$bulkUpdate`: 202 with a reference to the operation."""

    data_actions: ClassVar[dict[str, str]] = {"POST": "write"}

    @dicom_schema("Start a bulk update (v2)", ok={202: [JSON]}, errors=(400, 404, 409), body=[JSON])
    def post(self, request: Request, **kwargs: Any) -> Response:
        if self.api_version < MINIMUM_VERSION:
            raise NotFound()
        operation = update_create(partition=self.partition, body=request.data)
        return Response(operation_reference(version_segment=self.version_segment, operation=operation), status=202)
