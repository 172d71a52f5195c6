"""POST /studies/$bulkUpdate: start a bulk update of patient and study attributes."""

from __future__ import annotations

from typing import Any

from rest_framework.request import Request
from rest_framework.response import Response

from dicomsvc.errors import NotFound
from operations.views import operation_reference
from partitions.api import PartitionedView
from studies.services.update import bulk_update_start

# Microsoft serves the action in every version but answers 404 below v2 (reference §1.1).
MINIMUM_VERSION = 2


class BulkUpdateView(PartitionedView):
    """`/studies/$bulkUpdate`: 202 with a reference to the operation."""

    def post(self, request: Request, **kwargs: Any) -> Response:
        if self.api_version < MINIMUM_VERSION:
            raise NotFound()
        operation = bulk_update_start(partition=self.partition, body=request.data)
        return Response(operation_reference(version_segment=self.version_segment, operation=operation), status=202)
