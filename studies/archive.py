"""A study or series as a ZIP of its stored DICOM files, streamed (the admin's download).

Memory stays flat however big the study: rows are read in keyset batches, each blob in
1 MiB chunks, and the archive is written to a stream that hands its bytes on after every
chunk (zipfile writes a data descriptor after each member when it cannot seek back).
Members are stored, not deflated: most of a study's bytes are pixel data, often compressed
already, and deflating would cost the worker far more CPU than it saves bytes.
"""

from __future__ import annotations

import asyncio
import zipfile
from collections.abc import AsyncIterator, Iterator
from functools import partial

from asgiref.sync import sync_to_async

from dicomsvc.api.streaming import CHUNK
from partitions.models import Partition
from studies.blobstore import blob_open
from studies.models import Instance
from studies.selectors import VERSION_COLUMNS, StoredVersion, stored_version
from studies.versions import instance_scope

BATCH = 500


class _Pipe:
    """A write-only, unseekable file whose bytes are taken out as they are written."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []

    def write(self, data: bytes) -> int:
        self._parts.append(bytes(data))
        return len(data)

    def flush(self) -> None:
        """Nothing is buffered beyond `take`."""

    def close(self) -> None:
        """The archive's bytes are taken with `take`; nothing to release."""

    def take(self) -> bytes:
        data, self._parts = b"".join(self._parts), []
        return data


def _versions_after(
    *, partition: Partition, study: str, series: str | None, after: int
) -> list[tuple[int, StoredVersion]]:
    rows = (
        Instance.objects.filter(instance_scope(partition=partition, study=study, series=series), pk__gt=after)
        .order_by("pk")
        .values_list("pk", *VERSION_COLUMNS)[:BATCH]
    )
    return [(row[0], stored_version(partition=partition, row=row[1:], original=False)) for row in rows]


def archive_member_name(version: StoredVersion) -> str:
    """`<study>/<series>/<sop>.dcm`: the folders a DICOM viewer or an export would use."""
    return f"{version.study_instance_uid}/{version.series_instance_uid}/{version.sop_instance_uid}.dcm"


def _member_chunks(archive: zipfile.ZipFile, pipe: _Pipe, version: StoredVersion) -> Iterator[bytes]:
    """Write one member in steps; each step yields the archive bytes it produced."""
    info = zipfile.ZipInfo(archive_member_name(version))
    info.compress_type = zipfile.ZIP_STORED
    with blob_open(name=version.blob_name) as source, archive.open(info, "w", force_zip64=True) as member:
        while data := source.read(CHUNK):
            member.write(data)
            yield pipe.take()
    yield pipe.take()


async def study_archive_stream(*, partition: Partition, study: str, series: str | None = None) -> AsyncIterator[bytes]:
    """The ZIP of a partition's visible instances of a study (or one of its series), as chunks."""
    pipe = _Pipe()
    archive = zipfile.ZipFile(pipe, mode="w", allowZip64=True)
    fetch = sync_to_async(partial(_versions_after, partition=partition, study=study, series=series))
    after = 0
    while batch := await fetch(after=after):
        for _, version in batch:
            steps = _member_chunks(archive, pipe, version)
            while (data := await asyncio.to_thread(next, steps, None)) is not None:
                if data:
                    yield data
        after = batch[-1][0]
    await asyncio.to_thread(archive.close)
    yield pipe.take()
