"""WADO-RS bulk data: `.../instances/{instance}/bulkdata/{tag path}` (docs/api.md, "Bulk data")."""

from __future__ import annotations

from typing import Any, ClassVar

from django.http import HttpResponse, StreamingHttpResponse
from rest_framework.request import Request

from dicomsvc.api.mediatypes import accept_headers
from dicomsvc.api.openapi import ACCEPT, MULTIPART_OCTET, OCTET, RANGE, REQUEST_ORIGINAL, dicom_schema
from dicomsvc.api.ranges import byte_range_parse
from partitions.api import PartitionedView
from studies.bulkdata import bulkdata_retrieve
from studies.dicom.bulkdata import tag_path_parse
from studies.views.retrieve import retrieved_response, route_instance_uids, wants_original


class BulkDataView(PartitionedView):
    """The bytes of one binary attribute, whole or one `Range` of them."""

    data_actions: ClassVar[dict[str, str]] = {"GET": "read"}

    @dicom_schema(
        "Retrieve bulk data (WADO-RS)",
        ok={200: [MULTIPART_OCTET, OCTET], 206: [MULTIPART_OCTET, OCTET]},
        errors=(400, 404, 406, 416),
        headers=[ACCEPT, RANGE, REQUEST_ORIGINAL],
        description="The value a metadata BulkDataURI names: `{tag}` or `{sequence tag}/{item}/{tag}`. "
        "Encapsulated Pixel Data answers with the instance's frames.",
    )
    def get(self, request: Request, **kwargs: Any) -> HttpResponse | StreamingHttpResponse:
        study, series, instance = route_instance_uids(kwargs)
        result = bulkdata_retrieve(
            partition=self.partition,
            study=study,
            series=series,
            instance=instance,
            path=tag_path_parse(kwargs["tags"]),
            accept=accept_headers(request),
            byte_range=byte_range_parse(request.META.get("HTTP_RANGE", "")),
            original=wants_original(request),
        )
        return retrieved_response(result)
