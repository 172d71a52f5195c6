"""WADO-RS thumbnails: `studies/{s}/thumbnail`, `.../series/{s}/thumbnail`, `.../instances/{i}/thumbnail`."""

from __future__ import annotations

from typing import Any, ClassVar

from django.http import HttpResponse, StreamingHttpResponse
from rest_framework.request import Request

from dicomsvc.api.openapi import ACCEPT, IF_NONE_MATCH, JPEG, PNG, VIEWPORT, dicom_schema
from partitions.api import PartitionedView
from studies.dicom.viewport import viewport_parse
from studies.thumbnails import thumbnail_render
from studies.views.rendered import rendered_media_type
from studies.views.retrieve import retrieved_response, route_uids


class ThumbnailView(PartitionedView):
    """A representative image of a study, series or instance as JPEG or PNG, fitted to `viewport`."""

    data_actions: ClassVar[dict[str, str]] = {"GET": "read"}

    @dicom_schema(
        "Retrieve a thumbnail (WADO-RS)",
        ok={200: [JPEG, PNG], 304: None},
        query=[VIEWPORT],
        headers=[ACCEPT, IF_NONE_MATCH],
        description="A study's first series' middle image, a series' middle instance, an instance's middle frame; "
        "fitted to the viewport (128,128 by default).",
    )
    def get(self, request: Request, **kwargs: Any) -> HttpResponse | StreamingHttpResponse:
        study, series, instance = route_uids(kwargs)
        viewport = request.query_params.get("viewport")
        result = thumbnail_render(
            partition=self.partition,
            study=study,
            series=series,
            instance=instance,
            media_type=rendered_media_type(request),
            viewport=viewport_parse(viewport) if viewport is not None else None,
            if_none_match=request.META.get("HTTP_IF_NONE_MATCH", ""),
        )
        return retrieved_response(result)
