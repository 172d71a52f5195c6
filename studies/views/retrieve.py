"""WADO-RS views and the request parsing they share: instances, metadata and frames."""

from __future__ import annotations

from typing import Any, ClassVar

from django.http import HttpResponse, StreamingHttpResponse
from rest_framework.request import Request

from dicomsvc.api.mediatypes import accept_headers, accepts_dicom_json
from dicomsvc.api.openapi import (
    ACCEPT,
    DICOM_JSON,
    IF_NONE_MATCH,
    MULTIPART_OCTET,
    OCTET,
    REQUEST_ORIGINAL,
    dicom_schema,
)
from dicomsvc.api.query import whole_number
from dicomsvc.errors import InvalidFrames, NotAcceptable
from partitions.api import PartitionedView
from studies.dicom.accept import DICOM, negotiate, negotiate_frames
from studies.dicom.uids import uid_require
from studies.retrieve import Retrieved, frames_retrieve, instances_retrieve, metadata_retrieve


def route_uids(kwargs: dict[str, Any]) -> tuple[str, str | None, str | None]:
    """The study, series and instance UIDs of the route (None for levels it does not have)."""
    study = uid_require(name="StudyInstanceUID", value=kwargs["study"])
    series = uid_require(name="SeriesInstanceUID", value=kwargs["series"]) if "series" in kwargs else None
    instance = uid_require(name="SOPInstanceUID", value=kwargs["instance"]) if "instance" in kwargs else None
    return study, series, instance


def route_instance_uids(kwargs: dict[str, Any]) -> tuple[str, str, str]:
    """The UIDs of a route below an instance (it has all three segments)."""
    study, series, instance = route_uids(kwargs)
    assert series is not None and instance is not None
    return study, series, instance


def parse_frames(text: str) -> list[int]:
    """Frame numbers: 1 to 10 ASCII digits each (NumberOfFrames is a 32-bit IS), comma-separated."""
    numbers = []
    for piece in text.split(","):
        number = whole_number(piece.strip())
        if number is None or number <= 0:
            raise InvalidFrames()
        numbers.append(number)
    if not numbers:
        raise InvalidFrames()
    return numbers


def wants_original(request: Request) -> bool:
    value: str = request.META.get("HTTP_MSDICOM_REQUEST_ORIGINAL", "")
    return value.strip().lower() == "true"


def retrieved_response(result: Retrieved) -> HttpResponse | StreamingHttpResponse:
    response: HttpResponse | StreamingHttpResponse
    if isinstance(result.body, bytes):
        response = HttpResponse(result.body, status=result.status, content_type=result.content_type)
    else:
        response = StreamingHttpResponse(result.body, status=result.status, content_type=result.content_type)
    if result.length is not None:
        response["Content-Length"] = str(result.length)
    if result.etag is not None:
        response["ETag"] = result.etag
    for name, value in result.headers:
        response[name] = value
    return response


def instances_response(
    view: PartitionedView, request: Request, kwargs: dict[str, Any]
) -> HttpResponse | StreamingHttpResponse:
    """GET of a study, a series or an instance (`studies.views.resources`)."""
    study, series, instance = route_uids(kwargs)
    negotiated = negotiate(accept_headers(request), payload=DICOM, allow_single=instance is not None)
    result = instances_retrieve(
        partition=view.partition,
        study=study,
        series=series,
        instance=instance,
        negotiated=negotiated,
        original=wants_original(request),
    )
    return retrieved_response(result)


class MetadataView(PartitionedView):
    """`.../metadata` at study, series and instance level."""

    data_actions: ClassVar[dict[str, str]] = {"GET": "read"}

    @dicom_schema(
        "Retrieve metadata (WADO-RS)",
        ok={200: [DICOM_JSON], 304: None},
        headers=[ACCEPT, IF_NONE_MATCH, REQUEST_ORIGINAL],
        description="DICOM JSON of each instance; binary values inline up to DICOM_BULKDATA_THRESHOLD_BYTES, "
        "else as a BulkDataURI.",
    )
    def get(self, request: Request, **kwargs: Any) -> HttpResponse | StreamingHttpResponse:
        study, series, instance = route_uids(kwargs)
        if not accepts_dicom_json(request):
            raise NotAcceptable()
        result = metadata_retrieve(
            partition=self.partition,
            study=study,
            series=series,
            instance=instance,
            original=wants_original(request),
            if_none_match=request.META.get("HTTP_IF_NONE_MATCH", "").strip().strip('"'),
            base_url=self.base_url(),
        )
        return retrieved_response(result)


class FramesView(PartitionedView):
    """`.../instances/{instance}/frames/{1,2,...}`."""

    data_actions: ClassVar[dict[str, str]] = {"GET": "read"}

    @dicom_schema("Retrieve frames (WADO-RS)", ok={200: [MULTIPART_OCTET, OCTET]}, headers=[ACCEPT])
    def get(self, request: Request, **kwargs: Any) -> HttpResponse | StreamingHttpResponse:
        study, series, instance = route_instance_uids(kwargs)
        numbers = parse_frames(kwargs["frames"])
        offers = negotiate_frames(accept_headers(request), frame_count=len(numbers))
        result = frames_retrieve(
            partition=self.partition,
            study=study,
            series=series,
            instance=instance,
            numbers=numbers,
            offers=offers,
        )
        return retrieved_response(result)
