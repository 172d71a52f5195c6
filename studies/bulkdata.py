"""WADO-RS bulk data: `.../instances/{i}/bulkdata/{path}`, the bytes a metadata BulkDataURI names.

A value is served as it is encoded in the stored file (little endian for every syntax but
Explicit VR Big Endian), read by range and streamed above 1 MiB, honouring one `Range`.
Encapsulated Pixel Data has no single byte string a client could use: its URI answers with the
instance's frames, as `.../frames/1,...,n` would (same Accept rules, transcoding included).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from dicomsvc.api.mediatypes import accept_parse
from dicomsvc.api.ranges import ByteRange
from dicomsvc.api.streaming import CHUNK, multipart_content_type, new_boundary
from dicomsvc.errors import BulkDataNotFound, NotAcceptable
from partitions.models import Partition
from studies.blobstore import blob_open
from studies.dicom.accept import OCTET, negotiate_frames
from studies.dicom.bulkdata import BulkValue, bulk_value_locate
from studies.retrieve import Retrieved, frames_retrieve
from studies.selectors import StoredVersion, instance_versions_list


def bulkdata_negotiate(accept: list[str]) -> bool:
    """Whether the answer is multipart (PS3.18 §8.7.3: `multipart/related; type="application/octet-stream"`,
    the default) or a single `application/octet-stream` body; 406 for anything else."""
    ranges = [media for media in accept_parse(accept) if media.q > 0]
    if not ranges:
        return True
    for media in ranges:
        if media.type == OCTET:
            return False
        if media.type in ("*/*", "application/*"):
            return True
        if media.type == "multipart/related" and media.params.get("type", OCTET).lower() in (OCTET, "*/*"):
            return True
    raise NotAcceptable()


def _value_read(version: StoredVersion, path: tuple[int, ...]) -> BulkValue:
    with blob_open(name=version.blob_name) as fileobj:
        return bulk_value_locate(fileobj, transfer_syntax_uid=version.transfer_syntax_uid, path=path)


def _slice_read(name: str, offset: int, length: int) -> bytes:
    with blob_open(name=name) as fileobj:
        fileobj.seek(offset)
        data = fileobj.read(length)
    if len(data) != length:
        raise BulkDataNotFound()
    return data


async def _slice_chunks(name: str, offset: int, length: int) -> AsyncIterator[bytes]:
    fileobj = await asyncio.to_thread(blob_open, name=name)
    try:
        await asyncio.to_thread(fileobj.seek, offset)
        while length > 0:
            data = await asyncio.to_thread(fileobj.read, min(CHUNK, length))
            if not data:
                # Content-Length promised these bytes: end the response with an error instead.
                raise OSError("blob ended inside a bulk data value")
            length -= len(data)
            yield data
    finally:
        await asyncio.to_thread(fileobj.close)


async def _framed(head: bytes, body: AsyncIterator[bytes], tail: bytes) -> AsyncIterator[bytes]:
    yield head
    async for chunk in body:
        yield chunk
    yield tail


def bulkdata_retrieve(
    *,
    partition: Partition,
    study: str,
    series: str,
    instance: str,
    path: tuple[int, ...],
    accept: list[str],
    byte_range: ByteRange | None,
    original: bool,
) -> Retrieved:
    """The value at `path` of the instance's latest version (original on request), or the range asked for."""
    (version,) = instance_versions_list(
        partition=partition, study=study, series=series, instance=instance, original=original
    )
    value = _value_read(version, path)
    if value.encapsulated:
        numbers = list(range(1, version.number_of_frames + 1))
        if not numbers:
            raise BulkDataNotFound()
        return frames_retrieve(
            partition=partition,
            study=study,
            series=series,
            instance=instance,
            numbers=numbers,
            offers=negotiate_frames(accept, frame_count=len(numbers)),
        )
    multipart = bulkdata_negotiate(accept)
    start, stop = byte_range.resolve(value.length) if byte_range else (0, value.length)
    size = stop - start
    body: bytes | AsyncIterator[bytes]
    if value.offset < 0:
        body = value.data[start:stop]
    elif size <= CHUNK:
        body = _slice_read(version.blob_name, value.offset + start, size)
    else:
        body = _slice_chunks(version.blob_name, value.offset + start, size)
    status = 206 if byte_range else 200
    content_range = f"bytes {start}-{stop - 1}/{value.length}"
    headers: tuple[tuple[str, str], ...] = (("Accept-Ranges", "bytes"),)
    if not multipart:
        if byte_range:
            headers += (("Content-Range", content_range),)
        return Retrieved(body, OCTET, status=status, length=size, headers=headers)
    boundary = new_boundary()
    part_headers = f"Content-Type: {OCTET}\r\n"
    if byte_range:
        part_headers += f"Content-Range: {content_range}\r\n"
    head = f"--{boundary}\r\n{part_headers}\r\n".encode()
    tail = f"\r\n--{boundary}--".encode()
    return Retrieved(
        head + body + tail if isinstance(body, bytes) else _framed(head, body, tail),
        multipart_content_type(OCTET, boundary),
        status=status,
        length=len(head) + size + len(tail),
        headers=headers,
    )


