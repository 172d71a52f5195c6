"""WADO-URI (PS3.18 §9.1): `GET {base}/wado?requestType=WADO&studyUID=&seriesUID=&objectUID=...`.

OHIF's `wadouri` image loader and older viewers fetch instances this way: `application/dicom`
(in `transferSyntax`, Explicit VR Little Endian by default) or one frame as an image
(`frameNumber`, `rows`/`columns`, `windowCenter`/`windowWidth`, `imageQuality`). The
parameters are checked as the standard restricts them; each mistake is a 400 naming it.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

from django.http import HttpResponse, StreamingHttpResponse
from django.http.request import QueryDict
from drf_spectacular.utils import OpenApiParameter
from rest_framework.request import Request

from dicomsvc.api.mediatypes import accept_headers, accept_parse
from dicomsvc.api.openapi import ACCEPT, JPEG, PNG, dicom_schema
from dicomsvc.api.openapi import DICOM as DICOM_MEDIA
from dicomsvc.api.query import whole_number
from dicomsvc.errors import BadRequest, NotAcceptable
from partitions.api import PartitionedView
from studies.dicom.accept import DICOM, SUPPORTED_TARGETS
from studies.dicom.render import Window
from studies.dicom.transfer_syntaxes import EXPLICIT_VR_LITTLE_ENDIAN, is_transfer_syntax
from studies.dicom.uids import uid_require
from studies.retrieve import WadoUriRequest, wado_uri_retrieve
from studies.views.retrieve import retrieved_response

IMAGE_TYPES = ("image/jpeg", "image/png")
# Parameters that only make sense for an image (PS3.18 §9.1.2.3: "shall not be present" for application/dicom).
IMAGE_ONLY = ("frameNumber", "rows", "columns", "windowCenter", "windowWidth", "imageQuality", "region")
UIDS = (("studyUID", "StudyInstanceUID"), ("seriesUID", "SeriesInstanceUID"), ("objectUID", "SOPInstanceUID"))


def _one(query: QueryDict, name: str) -> str | None:
    values = query.getlist(name)
    if len(values) > 1:
        raise BadRequest(f"The WADO-URI parameter '{name}' is given more than once.")
    return values[0].strip() if values else None


def _positive(query: QueryDict, name: str) -> int | None:
    text = _one(query, name)
    if text is None:
        return None
    number = whole_number(text)
    if number is None or number < 1:
        raise BadRequest(f"The WADO-URI parameter '{name}' must be a positive integer, not '{text}'.")
    return number


def _number(query: QueryDict, name: str) -> float | None:
    text = _one(query, name)
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise BadRequest(f"The WADO-URI parameter '{name}' must be a decimal number, not '{text}'.")
    return value


def _content_type(query: QueryDict) -> str | None:
    """The first supported type of `contentType` (a comma-separated list); None when absent."""
    text = _one(query, "contentType")
    if text is None:
        return None
    for item in text.split(","):
        media = item.split(";")[0].strip().lower()
        if media in (DICOM, *IMAGE_TYPES):
            return media
    raise NotAcceptable(
        f"The WADO-URI contentType '{text}' is not supported; use application/dicom, image/jpeg or image/png."
    )


def _window(query: QueryDict) -> Window | None:
    center, width = _number(query, "windowCenter"), _number(query, "windowWidth")
    if (center is None) != (width is None):
        raise BadRequest("The WADO-URI parameters 'windowCenter' and 'windowWidth' must be given together.")
    if center is None or width is None:
        return None
    if width < 1:
        raise BadRequest("The WADO-URI parameter 'windowWidth' must be at least 1.")
    return Window(center, width)


def _transfer_syntax(query: QueryDict) -> str:
    ts = _one(query, "transferSyntax") or EXPLICIT_VR_LITTLE_ENDIAN
    if ts not in SUPPORTED_TARGETS and not is_transfer_syntax(ts):
        raise NotAcceptable(f"The WADO-URI transferSyntax '{ts}' is not a known transfer syntax.")
    return ts


def wado_uri_parse(query: QueryDict) -> tuple[tuple[str, str, str], WadoUriRequest]:
    """The instance's UIDs and what the request asks of it; 400 for a parameter the standard forbids."""
    request_type = _one(query, "requestType")
    if request_type != "WADO":
        raise BadRequest("The WADO-URI parameter 'requestType' must be 'WADO'.")
    uids = []
    for parameter, name in UIDS:
        value = _one(query, parameter)
        if not value:
            raise BadRequest(f"The WADO-URI parameter '{parameter}' is required.")
        uids.append(uid_require(name=name, value=value))
    content_type = _content_type(query)
    if content_type == DICOM:
        present = [name for name in IMAGE_ONLY if name in query]
        if present:
            raise BadRequest(
                f"The WADO-URI parameter '{present[0]}' is not allowed with contentType application/dicom."
            )
        return (uids[0], uids[1], uids[2]), WadoUriRequest(content_type, _transfer_syntax(query))
    if "transferSyntax" in query and content_type is not None:
        raise BadRequest(f"The WADO-URI parameter 'transferSyntax' is not allowed with contentType {content_type}.")
    if "region" in query:
        raise BadRequest("The WADO-URI parameter 'region' is not supported.")
    quality = _positive(query, "imageQuality") or 100
    if quality > 100:
        raise BadRequest("The WADO-URI parameter 'imageQuality' must be between 1 and 100.")
    request = WadoUriRequest(
        content_type,
        _transfer_syntax(query),
        frame_number=_positive(query, "frameNumber") or 1,
        rows=_positive(query, "rows"),
        columns=_positive(query, "columns"),
        window=_window(query),
        quality=quality,
    )
    return (uids[0], uids[1], uids[2]), request


def _acceptable(request: Request, content_type: str | None) -> None:
    """The Accept header, when the client sends one, must allow the type contentType names."""
    if content_type is None:
        return
    major = content_type.split("/")[0]
    for media in accept_parse(accept_headers(request)):
        if media.q > 0 and media.type in (content_type, f"{major}/*", "*/*"):
            return
    raise NotAcceptable()


WADO_URI_PARAMETERS = [
    OpenApiParameter("requestType", description="`WADO`.", required=True),
    OpenApiParameter("studyUID", required=True),
    OpenApiParameter("seriesUID", required=True),
    OpenApiParameter("objectUID", required=True),
    OpenApiParameter("contentType", description="`application/dicom`, `image/jpeg` or `image/png`."),
    OpenApiParameter("transferSyntax", description="With `application/dicom`; `*` for the stored file."),
    OpenApiParameter("frameNumber", int, description="With an image type; 1-based."),
    OpenApiParameter("rows", int, description="With an image type: the image fits this many rows."),
    OpenApiParameter("columns", int, description="With an image type: the image fits this many columns."),
    OpenApiParameter("windowCenter", float, description="With an image type, together with windowWidth."),
    OpenApiParameter("windowWidth", float, description="With an image type, together with windowCenter."),
    OpenApiParameter("imageQuality", int, description="JPEG quality, 1 to 100."),
]


class WadoUriView(PartitionedView):
    """`{base}/wado`: one instance by query parameters (a read)."""

    data_actions: ClassVar[dict[str, str]] = {"GET": "read"}

    @dicom_schema(
        "Retrieve an instance or a rendered frame by query parameters (WADO-URI, PS3.18 §9.1)",
        ok={200: [DICOM_MEDIA, JPEG, PNG]},
        query=WADO_URI_PARAMETERS,
        headers=[ACCEPT],
    )
    def get(self, request: Request, **kwargs: Any) -> HttpResponse | StreamingHttpResponse:
        (study, series, instance), wanted = wado_uri_parse(request.query_params)
        _acceptable(request, wanted.content_type)
        result = wado_uri_retrieve(partition=self.partition, study=study, series=series, instance=instance,
                                   request=wanted)  # fmt: skip
        return retrieved_response(result)
