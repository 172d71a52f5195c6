"""GET /v{n}/partitions."""

from __future__ import annotations

from typing import Any, ClassVar

from django.conf import settings
from rest_framework.request import Request
from rest_framework.response import Response

from dicomsvc.api.openapi import JSON, dicom_schema
from dicomsvc.api.views import DicomView
from dicomsvc.errors import PartitionsDisabled
from partitions.selectors import partition_list


class PartitionListView(DicomView):
    data_actions: ClassVar[dict[str, str]] = {"GET": "read"}

    @dicom_schema("List the data partitions", ok={200: [JSON]}, errors=(400,))
    def get(self, request: Request, **kwargs: Any) -> Response:
        if not settings.DICOM_ENABLE_DATA_PARTITIONS:
            raise PartitionsDisabled()
        data = [
            {
                "partitionKey": p.partition_key,
                "partitionName": p.partition_name,
                "createdDate": p.created_date.isoformat().replace("+00:00", "Z"),
            }
            for p in partition_list()
        ]
        return Response(data)
