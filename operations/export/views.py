"""POST /v{n}[/partitions/{partitionName}]/export."""

from __future__ import annotations

from typing import Any, ClassVar

from rest_framework.request import Request
from rest_framework.response import Response

from dicomsvc.api.mediatypes import media_type_parse
from dicomsvc.api.openapi import JSON, dicom_schema
from dicomsvc.errors import NotFound, UnsupportedMediaType
from operations.export.services import export_create
from operations.export.specification import export_specification_parse
from operations.wire import operation_reference, operation_url
from partitions.api import PartitionedView


class ExportView(PartitionedView):
    data_actions: ClassVar[dict[str, str]] = {"POST": "export"}

    @dicom_schema("Start an export", ok={202: [JSON]}, errors=(400, 404, 415), body=[JSON])
    def post(self, request: Request, **kwargs: Any) -> Response:
        if self.version_segment == "1.0-prerelease":
            raise NotFound("The requested resource was not found.")  # export exists from v1 on
        content_type = request.META.get("CONTENT_TYPE", "")
        if media_type_parse(content_type).type != "application/json":
            raise UnsupportedMediaType(content_type)
        specification = export_specification_parse(body=request.data)
        operation = export_create(partition=self.partition, specification=specification)
        response = Response(operation_reference(version_segment=self.version_segment, operation=operation), status=202)
        response["Location"] = operation_url(version_segment=self.version_segment, operation_id=operation.pk)
        return response
