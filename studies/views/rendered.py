"""WADO-RS rendered: `.../instances/{i}/rendered` and `.../frames/{n}/rendered` as JPEG or PNG."""

from __future__ import annotations

from typing import Any, ClassVar

from django.http import HttpResponse, StreamingHttpResponse
from rest_framework.request import Request

from dicomsvc.api.mediatypes import accept_headers, accept_parse
from dicomsvc.api.openapi import ACCEPT, JPEG, PNG, QUALITY, dicom_schema
from dicomsvc.api.query import whole_number
from dicomsvc.errors import BadRequest, NotAcceptable
from partitions.api import PartitionedView
from studies.retrieve import instance_render
from studies.views.retrieve import parse_frames, retrieved_response, route_instance_uids

QUALITY_ERROR = "Image quality must be between 1 and 100 inclusive"


def rendered_media_type(request: Request) -> str:
    """image/jpeg (the default) or image/png, by Accept; 406 for anything else."""
    ranges = accept_parse(accept_headers(request))
    if not ranges:
        return "image/jpeg"
    if len(ranges) > 1:
        raise NotAcceptable("The request contains multiple accept headers, which is not supported.")
    media = ranges[0].type
    if media in ("image/jpeg", "image/*", "*/*"):
        return "image/jpeg"
    if media == "image/png":
        return "image/png"
    raise NotAcceptable()


def _quality(request: Request) -> int:
    quality = whole_number(request.query_params.get("quality", "100"))
    if quality is None or not 1 <= quality <= 100:
        raise BadRequest(QUALITY_ERROR)
    return quality


class RenderedView(PartitionedView):
    """`.../rendered` of an instance (frame 1) or a frame, from the latest version."""

    data_actions: ClassVar[dict[str, str]] = {"GET": "read"}

    @dicom_schema("Render an instance or frame (WADO-RS)", ok={200: [JPEG, PNG]}, query=[QUALITY], headers=[ACCEPT])
    def get(self, request: Request, **kwargs: Any) -> HttpResponse | StreamingHttpResponse:
        study, series, instance = route_instance_uids(kwargs)
        frame_number = parse_frames(kwargs["frame"])[0] if "frame" in kwargs else 1
        media_type = rendered_media_type(request)
        quality = _quality(request)
        result = instance_render(
            partition=self.partition,
            study=study,
            series=series,
            instance=instance,
            frame_number=frame_number,
            media_type=media_type,
            quality=quality,
        )
        return retrieved_response(result)
