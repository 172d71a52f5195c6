"""WADO-RS rendered: `.../instances/{i}/rendered` and `.../frames/{n}/rendered` as JPEG or PNG."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpResponse
from rest_framework.request import Request

from dicomsvc.api.mediatypes import accept_headers, accept_parse
from dicomsvc.errors import BadRequest, NotAcceptable
from studies.blobstore import blob_open
from studies.dicom.render import frame_render
from studies.selectors import instance_versions_list
from studies.views.retrieve import _uids, parse_frames
from studies.views.stow import StowMixin

QUALITY_ERROR = "Image quality must be between 1 and 100 inclusive"


def _media_type(request: Request) -> str:
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
    text = request.query_params.get("quality", "100")
    if not text.isdigit() or not 1 <= int(text) <= 100:
        raise BadRequest(QUALITY_ERROR)
    return int(text)


class RenderedView(StowMixin):
    """Always the latest version; frame 1 for the instance route."""

    def get(self, request: Request, **kwargs: Any) -> HttpResponse:
        study, series, instance = _uids(kwargs)
        frame_number = parse_frames(kwargs["frame"])[0] if "frame" in kwargs else 1
        media_type = _media_type(request)
        quality = _quality(request)
        (version,) = instance_versions_list(partition=self.partition, study=study, series=series, instance=instance)
        if version.file_size > settings.DICOM_MAX_TRANSCODE_BYTES:
            raise NotAcceptable(
                f"Requested DICOM instance size is above the supported limit of {settings.DICOM_MAX_TRANSCODE_BYTES} "
                "for rendering."
            )
        with blob_open(name=version.blob_name) as fileobj:
            image = frame_render(fileobj, frame_number=frame_number, media_type=media_type, quality=quality)
        return HttpResponse(image, content_type=media_type)
