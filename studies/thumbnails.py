"""WADO-RS thumbnails (PS3.18 §10.4.1.1.4): a small JPEG or PNG of a study, series or instance.

Built on the rendered route's machinery (`studies.dicom.render`): the image chosen by
`studies.selectors_thumbnail` is rendered, fitted to the viewport (128 x 128 unless asked
otherwise) and encoded. The ETag names the version, frame, media type and viewport, so a
conditional request is answered 304 before anything is read or decoded; `Cache-Control` lets a
browser reuse a thumbnail for an hour without asking.
"""

from __future__ import annotations

from django.conf import settings

from dicomsvc.errors import NotAcceptable
from partitions.models import Partition
from studies.blobstore import blob_open
from studies.dicom.render import frame_image, image_encode
from studies.dicom.viewport import Viewport, image_fit
from studies.retrieve import Retrieved
from studies.selectors_thumbnail import thumbnail_source_get

DEFAULT_VIEWPORT = Viewport(128, 128)
QUALITY = 90
# private: with authentication on (issue #17) a shared cache must not serve one user's image to another.
CACHE_CONTROL = "private, max-age=3600"


def _matches(if_none_match: str, etag: str) -> bool:
    """RFC 9110 §13.1.2: weak comparison against each listed tag, or `*`."""
    for candidate in if_none_match.split(","):
        candidate = candidate.strip()
        if candidate == "*" or candidate.removeprefix("W/") == etag:
            return True
    return False


def thumbnail_render(
    *,
    partition: Partition,
    study: str,
    series: str | None,
    instance: str | None,
    media_type: str,
    viewport: Viewport | None,
    if_none_match: str,
) -> Retrieved:
    """The thumbnail, or an empty 304 when `if_none_match` names its current ETag."""
    source = thumbnail_source_get(partition=partition, study=study, series=series, instance=instance)
    viewport = viewport or DEFAULT_VIEWPORT
    region = "-".join(str(n) for n in viewport.region) if viewport.region else "all"
    kind = media_type.split("/")[1]
    etag = f'"{source.version.watermark}-{source.frame_number}-{kind}-{viewport.width}x{viewport.height}-{region}"'
    headers = (("Cache-Control", CACHE_CONTROL), ("Vary", "Accept"))
    if if_none_match and _matches(if_none_match, etag):
        return Retrieved(b"", status=304, etag=etag, headers=headers)
    limit = settings.DICOM_MAX_TRANSCODE_BYTES
    if source.version.file_size > limit:
        raise NotAcceptable(f"Requested DICOM instance size is above the supported limit of {limit} for rendering.")
    with blob_open(name=source.version.blob_name) as fileobj:
        image = frame_image(fileobj, frame_number=source.frame_number)
    data = image_encode(image_fit(image, viewport), media_type=media_type, quality=QUALITY)
    return Retrieved(data, media_type, etag=etag, headers=headers)
