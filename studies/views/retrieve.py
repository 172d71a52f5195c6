"""WADO-RS (instances, metadata, frames) and DELETE views."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from functools import partial
from typing import Any

from django.conf import settings
from django.http import HttpResponse, StreamingHttpResponse
from rest_framework.request import Request

from dicomsvc.api.mediatypes import accept_headers, accepts_dicom_json
from dicomsvc.api.streaming import (
    CHUNK,
    PartSource,
    StoredPart,
    bytes_chunks,
    file_chunks,
    multipart_content_type,
    multipart_length,
    multipart_stream,
    new_boundary,
)
from dicomsvc.errors import FrameNotFound, InvalidFrames, NotAcceptable, TranscodingNotSupported
from studies.blobstore import blob_open
from studies.dicom.accept import DICOM, OCTET, ORIGINAL, negotiate, negotiate_frames
from studies.dicom.frames import frames_read
from studies.dicom.transcode import ELE, transcode_check, transcode_to_ele
from studies.dicom.uids import uid_require
from studies.selectors import (
    StoredVersion,
    instance_frame_source_get,
    instance_metadata_list,
    instance_versions_list,
)
from studies.services import instances_delete
from studies.views.stow import StowMixin

DICOM_JSON = "application/dicom+json"
SMALL_BLOB = CHUNK  # single-part responses up to this size are read whole (1 MiB)


def _uids(kwargs: dict[str, Any]) -> tuple[str, str | None, str | None]:
    study = uid_require(name="StudyInstanceUID", value=kwargs["study"])
    series = uid_require(name="SeriesInstanceUID", value=kwargs["series"]) if "series" in kwargs else None
    instance = uid_require(name="SOPInstanceUID", value=kwargs["instance"]) if "instance" in kwargs else None
    return study, series, instance


def _wants_original(request: Request) -> bool:
    return request.META.get("HTTP_MSDICOM_REQUEST_ORIGINAL", "").strip().lower() == "true"


def _transcoded(version: StoredVersion) -> bytes:
    with blob_open(name=version.blob_name) as fileobj:
        return transcode_to_ele(fileobj)


def _stored_type(version: StoredVersion) -> str:
    return f"{DICOM}; transfer-syntax={version.transfer_syntax_uid}"


def _served_as_stored(version: StoredVersion, target: str) -> bool:
    return target == ORIGINAL or version.transfer_syntax_uid == ELE


def _part(version: StoredVersion, target: str) -> PartSource | StoredPart:
    stored_type = _stored_type(version)
    opener = partial(blob_open, name=version.blob_name)
    if _served_as_stored(version, target):
        return StoredPart(stored_type, opener, version.file_size)

    async def resolve() -> tuple[str, AsyncIterator[bytes]]:
        try:
            data = await asyncio.to_thread(_transcoded, version)
        except TranscodingNotSupported:
            # The status line has gone out already; serve this part as stored, and say so in
            # its Content-Type, rather than break the whole response.
            return stored_type, file_chunks(opener)
        return f"{DICOM}; transfer-syntax={ELE}", bytes_chunks(data)

    return resolve


async def _ready(content_type: str, data: bytes) -> tuple[str, AsyncIterator[bytes]]:
    return content_type, bytes_chunks(data)


class RetrieveMixin(StowMixin):
    """GET of DICOM instances and DELETE on the same path."""

    level = "study"

    def get(self, request: Request, **kwargs: Any) -> HttpResponse | StreamingHttpResponse:
        study, series, instance = _uids(kwargs)
        negotiated = negotiate(accept_headers(request), payload=DICOM, allow_single=instance is not None)
        versions = instance_versions_list(
            partition=self.partition,
            study=study,
            series=series,
            instance=instance,
            original=_wants_original(request),
        )
        if negotiated.transfer_syntax != ORIGINAL:
            for version in versions:
                transcode_check(
                    transfer_syntax_uid=version.transfer_syntax_uid,
                    file_size=version.file_size,
                    has_pixels=version.number_of_frames > 0,
                    limit=settings.DICOM_MAX_TRANSCODE_BYTES,
                )
        if len(versions) == 1 and negotiated.transfer_syntax != ORIGINAL and versions[0].transfer_syntax_uid != ELE:
            # One instance: transcode before answering, so a failure is a clean 406.
            data = _transcoded(versions[0])
            content_type = f"{DICOM}; transfer-syntax={ELE}"
            if not negotiated.multipart:
                return HttpResponse(data, content_type=content_type)
            parts: list[PartSource | StoredPart] = [partial(_ready, content_type, data)]
        else:
            parts = [_part(version, negotiated.transfer_syntax) for version in versions]
        if not negotiated.multipart:
            version = versions[0]
            content_type = _stored_type(version)
            if version.file_size <= SMALL_BLOB:
                # Already on a worker thread: read a small blob here rather than stream it
                # through an async generator and another thread hop.
                with blob_open(name=version.blob_name) as fileobj:
                    response = HttpResponse(fileobj.read(), content_type=content_type)
                response["Content-Length"] = str(len(response.content))  # served as stored: docs/api.md
                return response
            response = StreamingHttpResponse(
                file_chunks(partial(blob_open, name=version.blob_name)), content_type=content_type
            )
            response["Content-Length"] = str(version.file_size)
            return response
        boundary = new_boundary()
        response = StreamingHttpResponse(
            multipart_stream(parts, boundary), content_type=multipart_content_type(DICOM, boundary)
        )
        if all(_served_as_stored(version, negotiated.transfer_syntax) for version in versions):
            # Every part's size is known up front: say so, rather than chunk the body.
            response["Content-Length"] = str(
                multipart_length([(_stored_type(v), v.file_size) for v in versions], boundary)
            )
        return response

    def delete(self, request: Request, **kwargs: Any) -> HttpResponse:
        study, series, instance = _uids(kwargs)
        instances_delete(
            partition=self.partition,
            study_instance_uid=study,
            series_instance_uid=series,
            sop_instance_uid=instance,
        )
        return HttpResponse(status=204)


class StudyView(RetrieveMixin):
    """`/studies/{study}`: WADO (GET), STOW into the study (POST), DELETE."""

    def post(self, request: Request, **kwargs: Any) -> HttpResponse:
        return self.stow(request, kwargs["study"])


class SeriesView(RetrieveMixin):
    """`/studies/{study}/series/{series}`: WADO (GET), DELETE."""


class InstanceView(RetrieveMixin):
    """`/studies/{study}/series/{series}/instances/{instance}`: WADO (GET), DELETE."""


class MetadataView(StowMixin):
    """`.../metadata` at study, series and instance level."""

    def get(self, request: Request, **kwargs: Any) -> HttpResponse:
        study, series, instance = _uids(kwargs)
        if not accepts_dicom_json(request):
            raise NotAcceptable()
        result = instance_metadata_list(
            partition=self.partition,
            study=study,
            series=series,
            instance=instance,
            original=_wants_original(request),
        )
        if_none_match = request.META.get("HTTP_IF_NONE_MATCH", "").strip().strip('"')
        if if_none_match and if_none_match.lower() == result.etag.lower():
            return HttpResponse(status=304)
        body = "[" + ",".join(result.documents) + "]"
        response = HttpResponse(body.encode("utf-8"), content_type=DICOM_JSON)
        response["ETag"] = result.etag
        return response


def parse_frames(text: str) -> list[int]:
    numbers = []
    for piece in text.split(","):
        piece = piece.strip()
        if not piece.lstrip("-").isdigit():
            raise InvalidFrames()
        number = int(piece)
        if number <= 0:
            raise InvalidFrames()
        numbers.append(number)
    if not numbers:
        raise InvalidFrames()
    return numbers


class FramesView(StowMixin):
    """`.../instances/{instance}/frames/{1,2,...}`."""

    def get(self, request: Request, **kwargs: Any) -> HttpResponse:
        study, series, instance = _uids(kwargs)
        numbers = parse_frames(kwargs["frames"])
        negotiated = negotiate_frames(accept_headers(request), frame_count=len(numbers))
        source = instance_frame_source_get(partition=self.partition, study=study, series=series, instance=instance)
        if any(number > source.number_of_frames for number in numbers):
            raise FrameNotFound()
        with blob_open(name=source.blob_name) as fileobj:
            frames, ts = frames_read(
                fileobj,
                transfer_syntax_uid=source.transfer_syntax_uid,
                frame_index_text=source.frame_index,
                numbers=numbers,
                target=negotiated.transfer_syntax,
                file_size=source.file_size,
                limit=settings.DICOM_MAX_TRANSCODE_BYTES,
            )
        part_type = f"{OCTET}; transfer-syntax={ts}"
        if not negotiated.multipart:
            return HttpResponse(frames[0], content_type=part_type)
        boundary = new_boundary()
        chunks = []
        for frame in frames:
            chunks.append(f"--{boundary}\r\nContent-Type: {part_type}\r\n\r\n".encode())
            chunks.append(frame)
            chunks.append(b"\r\n")
        chunks.append(f"--{boundary}--".encode())
        return HttpResponse(b"".join(chunks), content_type=multipart_content_type(OCTET, boundary))
