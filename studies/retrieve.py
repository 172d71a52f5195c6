"""WADO-RS reads: what a retrieve of instances, metadata, frames or a rendered image sends.

Each function takes the partition, the UIDs and what negotiation settled, reads the stored
versions (`studies.selectors`), decides whether a blob goes out as stored or transcoded, and
returns a `Retrieved`: the body (bytes, or chunks streamed from storage) with its Content-Type.
Views only parse the request and turn a `Retrieved` into a response.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from functools import partial

from django.conf import settings

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
from dicomsvc.errors import FrameNotFound, NotAcceptable, TranscodingNotSupported
from partitions.models import Partition
from studies.blobstore import blob_open
from studies.dicom.accept import DICOM, OCTET, ORIGINAL, SUPPORTED_TARGETS, Negotiated, frame_representation_pick
from studies.dicom.bulkdata import bulkdata_uris_resolve
from studies.dicom.frames import frames_read
from studies.dicom.render import Window, frame_render
from studies.dicom.transcode import transcode_check, transcode_to_ele
from studies.dicom.transfer_syntaxes import EXPLICIT_VR_LITTLE_ENDIAN as ELE
from studies.selectors import (
    StoredVersion,
    instance_frame_source_get,
    instance_metadata_list,
    instance_versions_list,
)

DICOM_JSON = "application/dicom+json"
SMALL_BLOB = CHUNK  # single-part responses up to this size are read whole (1 MiB)


@dataclass(frozen=True)
class Retrieved:
    """A response body and what describes it."""

    body: bytes | AsyncIterator[bytes]
    content_type: str | None = None  # None: the framework's default (an empty 304)
    status: int = 200
    length: int | None = None  # Content-Length of a streamed body, when known up front
    etag: str | None = None
    headers: tuple[tuple[str, str], ...] = ()  # others: Content-Range, Cache-Control, ...


def _transcoded(version: StoredVersion) -> bytes:
    with blob_open(name=version.blob_name) as fileobj:
        return transcode_to_ele(fileobj)


def _stored_type(version: StoredVersion) -> str:
    return f"{DICOM}; transfer-syntax={version.transfer_syntax_uid}"


def _served_as_stored(version: StoredVersion, target: str) -> bool:
    return target in (ORIGINAL, version.transfer_syntax_uid) or version.transfer_syntax_uid == ELE


def _stored_syntax_require(versions: list[StoredVersion], target: str) -> None:
    """A syntax the server does not transcode to is served only by files stored in it (406 before any byte)."""
    for version in versions:
        if version.transfer_syntax_uid != target:
            raise NotAcceptable(
                f"The instance {version.sop_instance_uid} is stored in transfer syntax {version.transfer_syntax_uid}, "
                f"not {target}; the server transcodes only to {ELE}. Request transfer-syntax=* for the stored file."
            )


def _transcoding_part(version: StoredVersion, stored_type: str) -> PartSource:
    """A part transcoded to Explicit VR Little Endian when its turn comes."""

    async def resolve() -> tuple[str, AsyncIterator[bytes]]:
        try:
            data = await asyncio.to_thread(_transcoded, version)
        except TranscodingNotSupported:
            # The status line has gone out already; serve this part as stored, and say so in
            # its Content-Type, rather than break the whole response.
            return stored_type, file_chunks(partial(blob_open, name=version.blob_name))
        return f"{DICOM}; transfer-syntax={ELE}", bytes_chunks(data)

    return resolve


async def _ready(content_type: str, data: bytes) -> tuple[str, AsyncIterator[bytes]]:
    return content_type, bytes_chunks(data)


def _stored(version: StoredVersion) -> Retrieved:
    """One blob as stored, as a single-part body."""
    content_type = _stored_type(version)
    if version.file_size <= SMALL_BLOB:
        # Already on a worker thread: read a small blob here rather than stream it through an
        # async generator and another thread hop.
        with blob_open(name=version.blob_name) as fileobj:
            data = fileobj.read()
        return Retrieved(data, content_type, length=len(data))
    return Retrieved(file_chunks(partial(blob_open, name=version.blob_name)), content_type, length=version.file_size)


def instances_retrieve(
    *,
    partition: Partition,
    study: str,
    series: str | None,
    instance: str | None,
    negotiated: Negotiated,
    original: bool,
) -> Retrieved:
    """The instances of a study, series or one instance as DICOM: as stored, or transcoded to Explicit VR LE."""
    versions = instance_versions_list(
        partition=partition, study=study, series=series, instance=instance, original=original
    )
    target = negotiated.transfer_syntax
    if target not in SUPPORTED_TARGETS:
        _stored_syntax_require(versions, target)
    elif target != ORIGINAL:
        for version in versions:
            transcode_check(
                transfer_syntax_uid=version.transfer_syntax_uid,
                file_size=version.file_size,
                has_pixels=version.number_of_frames > 0,
                limit=settings.DICOM_MAX_TRANSCODE_BYTES,
            )
    if len(versions) == 1 and not _served_as_stored(versions[0], target):
        # One instance: transcode before answering, so a failure is a clean 406.
        data = _transcoded(versions[0])
        content_type = f"{DICOM}; transfer-syntax={ELE}"
        if not negotiated.multipart:
            return Retrieved(data, content_type)
        parts: list[PartSource | StoredPart] = [partial(_ready, content_type, data)]
        sizes: list[tuple[str, int]] = []
    elif not negotiated.multipart:
        return _stored(versions[0])
    else:
        # One pass over what may be thousands of instances.
        parts, sizes = [], []
        for version in versions:
            stored_type = _stored_type(version)
            if _served_as_stored(version, target):
                parts.append(StoredPart(stored_type, partial(blob_open, name=version.blob_name), version.file_size))
                sizes.append((stored_type, version.file_size))
            else:
                parts.append(_transcoding_part(version, stored_type))
    boundary = new_boundary()
    length = None
    if len(sizes) == len(versions):
        # Every part's size is known up front: say so, rather than chunk the body.
        length = multipart_length(sizes, boundary)
    return Retrieved(multipart_stream(parts, boundary), multipart_content_type(DICOM, boundary), length=length)


def metadata_retrieve(
    *,
    partition: Partition,
    study: str,
    series: str | None,
    instance: str | None,
    original: bool,
    if_none_match: str,
    base_url: str,
) -> Retrieved:
    """The DICOM JSON of a study, series or instance, or 304 when `if_none_match` is its ETag.

    BulkDataURIs are made absolute under `base_url` (the partition's DICOMweb root).
    """
    result = instance_metadata_list(
        partition=partition, study=study, series=series, instance=instance, original=original
    )
    if if_none_match and if_none_match.lower() == result.etag.lower():
        return Retrieved(b"", status=304)
    documents = [
        bulkdata_uris_resolve(document, instance_url=f"{base_url}/{path}")
        for document, path in zip(result.documents, result.paths, strict=True)
    ]
    body = "[" + ",".join(documents) + "]"
    return Retrieved(body.encode("utf-8"), DICOM_JSON, etag=result.etag)


def frames_retrieve(
    *,
    partition: Partition,
    study: str,
    series: str,
    instance: str,
    numbers: list[int],
    offers: list[Negotiated],
) -> Retrieved:
    """Frames of an instance (1-based `numbers`), each in its own part when multipart.

    `offers` are the acceptable representations, most preferred first: the first one the stored
    syntax fits is served (`frame_representation_pick`)."""
    source = instance_frame_source_get(partition=partition, study=study, series=series, instance=instance)
    if any(number > source.number_of_frames for number in numbers):
        raise FrameNotFound()
    negotiated = frame_representation_pick(offers, stored_syntax=source.transfer_syntax_uid)
    with blob_open(name=source.blob_name) as fileobj:
        frames, ts = frames_read(
            fileobj,
            transfer_syntax_uid=source.transfer_syntax_uid,
            frame_index_text=source.frame_index,
            numbers=numbers,
            # A compressed media type is the stored syntax (`frame_representation_pick`).
            target=negotiated.transfer_syntax if negotiated.media_type == OCTET else ORIGINAL,
            file_size=source.file_size,
            limit=settings.DICOM_MAX_TRANSCODE_BYTES,
        )
    part_type = f"{negotiated.media_type}; transfer-syntax={ts}"
    if not negotiated.multipart:
        return Retrieved(frames[0], part_type)
    boundary = new_boundary()
    chunks = []
    for frame in frames:
        chunks.append(f"--{boundary}\r\nContent-Type: {part_type}\r\n\r\n".encode())
        chunks.append(frame)
        chunks.append(b"\r\n")
    chunks.append(f"--{boundary}--".encode())
    return Retrieved(b"".join(chunks), multipart_content_type(negotiated.media_type, boundary))


def instance_render(
    *,
    partition: Partition,
    study: str,
    series: str,
    instance: str,
    frame_number: int,
    media_type: str,
    quality: int,
    window: Window | None = None,
    rows: int | None = None,
    columns: int | None = None,
) -> Retrieved:
    """One frame of the latest version as a JPEG or PNG image (`window`: center and width)."""
    (version,) = instance_versions_list(partition=partition, study=study, series=series, instance=instance)
    return _rendered(version, frame_number=frame_number, media_type=media_type, quality=quality, window=window,
                     rows=rows, columns=columns)  # fmt: skip


def _rendered(
    version: StoredVersion,
    *,
    frame_number: int,
    media_type: str,
    quality: int,
    window: Window | None,
    rows: int | None,
    columns: int | None,
) -> Retrieved:
    limit = settings.DICOM_MAX_TRANSCODE_BYTES
    if version.file_size > limit:
        raise NotAcceptable(f"Requested DICOM instance size is above the supported limit of {limit} for rendering.")
    with blob_open(name=version.blob_name) as fileobj:
        image = frame_render(
            fileobj, frame_number=frame_number, media_type=media_type, quality=quality, window=window, rows=rows,
            columns=columns,
        )  # fmt: skip
    return Retrieved(image, media_type)


@dataclass(frozen=True)
class WadoUriRequest:
    """What a WADO-URI request (PS3.18 §9.1) asks of one instance; `content_type` None = the standard's default."""

    content_type: str | None
    transfer_syntax: str  # for application/dicom: "*" = as stored
    frame_number: int = 1
    rows: int | None = None
    columns: int | None = None
    window: Window | None = None
    quality: int = 100


def wado_uri_retrieve(
    *, partition: Partition, study: str, series: str, instance: str, request: WadoUriRequest
) -> Retrieved:
    """The instance as DICOM, or one frame of it as an image; without contentType an image when it has pixels."""
    (version,) = instance_versions_list(partition=partition, study=study, series=series, instance=instance)
    content_type = request.content_type or ("image/jpeg" if version.number_of_frames > 0 else DICOM)
    if content_type == DICOM:
        return instances_retrieve(
            partition=partition, study=study, series=series, instance=instance,
            negotiated=Negotiated(False, DICOM, request.transfer_syntax), original=False,
        )  # fmt: skip
    if version.number_of_frames == 0:
        raise NotAcceptable(f"The instance has no pixel data to render as {content_type}; ask for application/dicom.")
    return _rendered(
        version, frame_number=request.frame_number, media_type=content_type, quality=request.quality,
        window=request.window, rows=request.rows, columns=request.columns,
    )  # fmt: skip
