"""Pictures and downloads of the admin's study, series and instance pages.

Thumbnails and the frame viewer are the `rendered` endpoint's image (`studies.retrieve.
instance_render`, the function `.../rendered` calls), served under /admin so the staff
session is what authorises them. The URL names the version (`?v=<watermark>`) and the reply
carries an ETag, so a browser keeps each image until the instance changes. An instance that
cannot be rendered answers a placeholder image naming the reason, never an error that breaks
the page around it.
"""

from __future__ import annotations

import textwrap
from typing import Any

from django.http import (
    HttpRequest,
    HttpResponse,
    HttpResponseBadRequest,
    HttpResponseNotModified,
    StreamingHttpResponse,
)
from django.urls import reverse
from django.utils.html import escape

from dicomsvc.errors import ApplicationError
from partitions.models import Partition
from studies.archive import study_archive_stream
from studies.dicom.render import Window
from studies.models import Instance
from studies.retrieve import instance_render

THUMBNAIL_QUALITY = 85
# Images of one version never change: a browser may keep them a day without asking.
IMAGE_CACHE_CONTROL = "private, max-age=86400"
PLACEHOLDER_SIZE = 256


def rendered_url(instance_id: int, watermark: int, **params: Any) -> str:
    query = "&".join(f"{key}={value}" for key, value in (("v", watermark), *params.items()))
    return f"{reverse('admin:studies_instance_rendered', args=[instance_id])}?{query}"


def placeholder_svg(reason: str) -> str:
    lines = textwrap.wrap(reason, 30)[:6]
    spans = "".join(
        f'<tspan x="{PLACEHOLDER_SIZE // 2}" dy="{18 if index else 0}">{escape(line)}</tspan>'
        for index, line in enumerate(lines)
    )
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{PLACEHOLDER_SIZE}" height="{PLACEHOLDER_SIZE}" '
        f'viewBox="0 0 {PLACEHOLDER_SIZE} {PLACEHOLDER_SIZE}"><title>{escape(reason)}</title>'
        f'<rect width="100%" height="100%" fill="#444"/>'
        f'<text x="{PLACEHOLDER_SIZE // 2}" y="90" fill="#eee" font-family="sans-serif" font-size="15" '
        f'text-anchor="middle">No image</text>'
        f'<text x="{PLACEHOLDER_SIZE // 2}" y="125" fill="#ccc" font-family="sans-serif" font-size="12" '
        f'text-anchor="middle">{spans}</text></svg>'
    )


def placeholder_response(reason: str) -> HttpResponse:
    response = HttpResponse(placeholder_svg(reason), content_type="image/svg+xml")
    # The reason may pass (a decoder installed, the file replaced): ask again next time.
    response["Cache-Control"] = "no-store"
    response["X-Render-Error"] = reason.encode("ascii", "replace").decode()
    return response


def _render_parameters(request: HttpRequest) -> tuple[int, Window | None]:
    """`frame` (1-based) and the optional window `wc`/`ww`; ValueError when malformed."""
    frame = int(request.GET.get("frame", "1"))
    if frame < 1:
        raise ValueError("frame")
    center, width = request.GET.get("wc"), request.GET.get("ww")
    if center is None and width is None:
        return frame, None
    window = Window(center=float(center or ""), width=float(width or ""))
    if window.width <= 0:
        raise ValueError("width")
    return frame, window


def rendered_response(request: HttpRequest, instance: Instance) -> HttpResponse:
    """A frame of the instance's latest version as JPEG, or a placeholder naming why not."""
    try:
        frame, window = _render_parameters(request)
    except ValueError:
        return HttpResponseBadRequest("frame must be a positive integer; wc and ww numbers (ww > 0).")
    etag = f'"{instance.watermark}-{frame}-{window.center if window else ""}-{window.width if window else ""}"'
    if etag in request.headers.get("If-None-Match", ""):
        response: HttpResponse = HttpResponseNotModified()
        response["ETag"] = etag
        response["Cache-Control"] = IMAGE_CACHE_CONTROL
        return response
    if instance.number_of_frames == 0:
        return placeholder_response("The instance has no pixel data.")
    try:
        result = instance_render(
            partition=instance.partition,
            study=instance.study_instance_uid,
            series=instance.series_instance_uid,
            instance=instance.sop_instance_uid,
            frame_number=frame,
            media_type="image/jpeg",
            quality=THUMBNAIL_QUALITY,
            window=window,
        )
    except ApplicationError as exc:
        return placeholder_response(str(exc))
    response = HttpResponse(result.body, content_type=result.content_type)
    response["ETag"] = etag
    response["Cache-Control"] = IMAGE_CACHE_CONTROL
    return response


def archive_response(*, partition: Partition, study: str, series: str | None, filename: str) -> StreamingHttpResponse:
    """The study's (or series') stored files as a streamed ZIP."""
    response = StreamingHttpResponse(
        study_archive_stream(partition=partition, study=study, series=series), content_type="application/zip"
    )
    response["Content-Disposition"] = f'attachment; filename="{filename}.zip"'
    return response
