"""Multipart response streaming: stored blobs are read in groups, bytes exactly as framed."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator

import pytest

from dicomsvc.api import streaming
from dicomsvc.api.streaming import CHUNK, StoredPart, bytes_chunks, multipart_length, multipart_stream

BOUNDARY = "b0undary"


def _stored(data: bytes, content_type: str = "application/dicom") -> StoredPart:
    return StoredPart(content_type, lambda: io.BytesIO(data), len(data))


async def _lazy() -> tuple[str, AsyncIterator[bytes]]:
    return "application/dicom; transfer-syntax=1.2.840.10008.1.2.1", bytes_chunks(b"transcoded")


def _collect(parts: list) -> bytes:
    async def run() -> bytes:
        return b"".join([chunk async for chunk in multipart_stream(parts, BOUNDARY)])

    return asyncio.run(run())


def _expected(parts: list[tuple[str, bytes]]) -> bytes:
    body = b"".join(
        f"--{BOUNDARY}\r\nContent-Type: {content_type}\r\n\r\n".encode() + data + b"\r\n"
        for content_type, data in parts
    )
    return body + f"--{BOUNDARY}--".encode()


def test_small_blobs_are_read_in_groups_and_framed_exactly(monkeypatch) -> None:
    reads: list[int] = []
    real = streaming._blobs_read

    def counting(parts: list[StoredPart]) -> list[bytes]:
        reads.append(len(parts))
        return real(parts)

    monkeypatch.setattr(streaming, "_blobs_read", counting)
    small = [bytes([n]) * (CHUNK // 2 - n) for n in range(9)]  # ~0.5 MiB each, all different
    big = b"B" * (CHUNK + 17)  # over CHUNK: streamed on its own, in chunks
    parts = [_stored(blob) for blob in small[:5]] + [_stored(big), _lazy] + [_stored(blob) for blob in small[5:]]

    body = _collect(parts)

    expected = [("application/dicom", blob) for blob in small[:5]]
    expected += [("application/dicom", big), ("application/dicom; transfer-syntax=1.2.840.10008.1.2.1", b"transcoded")]
    expected += [("application/dicom", blob) for blob in small[5:]]
    assert body == _expected(expected)
    # Groups of up to BATCH_BYTES (2 MiB): 4 + 1 before the big blob, 4 after it.
    assert reads == [4, 1, 4]
    stored = [(p.content_type, p.size) for p in parts if isinstance(p, StoredPart)]
    assert len(_expected([(t, b"x" * n) for t, n in stored])) == multipart_length(stored, BOUNDARY)


def test_blob_of_another_size_than_recorded_is_never_sent() -> None:
    short = StoredPart("application/dicom", lambda: io.BytesIO(b"abc"), 4)
    with pytest.raises(OSError, match="blob is 3 bytes, 4 recorded"):
        _collect([_stored(b"first"), short])
