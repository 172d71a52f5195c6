"""Streaming multipart/related parsing over a seekable file (RFC 2046 §5.1).

A body on disk is scanned for delimiters in 1 MB windows; a body in memory (`BytesIO`) is
searched in place. Each part comes back as a `FileSlice` over the same file, so no part is
copied or held in memory twice.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import BinaryIO

from dicomsvc.errors import BadRequest
from studies.dicom.streams import CHUNK, FileSlice

MAX_HEADER_BYTES = 16 * 1024
MULTIPART_ERROR = "There was an error reading the multipart request."


@dataclass
class Part:
    headers: dict[str, str]
    body: FileSlice

    @property
    def content_type(self) -> str | None:
        return self.headers.get("content-type")


def _find(raw: BinaryIO, needle: bytes, start: int, size: int) -> int:
    """Offset of the first `needle` lying wholly in [start, size), or -1."""
    if isinstance(raw, io.BytesIO):
        return raw.getvalue().find(needle, start, size)  # the buffer itself: no copy
    overlap = len(needle) - 1
    pos = start
    while pos < size:
        raw.seek(pos)
        window = raw.read(min(CHUNK + overlap, size - pos))
        if not window:
            return -1
        found = window.find(needle)
        if found >= 0:
            return pos + found
        if len(window) <= overlap:
            return -1
        pos += len(window) - overlap
    return -1


def _read(raw: BinaryIO, start: int, length: int) -> bytes:
    raw.seek(start)
    return raw.read(length)


def _parse_headers(block: bytes) -> dict[str, str]:
    headers: dict[str, str] = {}
    for line in block.decode("latin-1").split("\r\n"):
        if not line.strip():
            continue
        name, sep, value = line.partition(":")
        if not sep:
            raise BadRequest(MULTIPART_ERROR)
        headers[name.strip().lower()] = value.strip()
    return headers


def multipart_parse(*, raw: BinaryIO, size: int, boundary: str) -> list[Part]:
    delimiter = b"--" + boundary.encode("latin-1")
    # The first delimiter may open the body or follow a preamble ending in CRLF.
    if _read(raw, 0, len(delimiter)) == delimiter:
        pos = 0
    else:
        found = _find(raw, b"\r\n" + delimiter, 0, size)
        if found < 0:
            raise BadRequest(MULTIPART_ERROR)
        pos = found + 2
    parts: list[Part] = []
    while True:
        after = pos + len(delimiter)
        tail = _read(raw, after, 2)
        if tail == b"--":
            return parts  # close delimiter; anything after it is epilogue
        # Skip transport padding up to the CRLF that ends the delimiter line.
        line_end = _find(raw, b"\r\n", after, min(size, after + 1024))
        if line_end < 0 or _read(raw, after, line_end - after).strip(b" \t"):
            raise BadRequest(MULTIPART_ERROR)
        header_start = line_end + 2
        if _read(raw, header_start, 2) == b"\r\n":
            headers: dict[str, str] = {}
            body_start = header_start + 2
        else:
            header_end = _find(raw, b"\r\n\r\n", header_start, min(size, header_start + MAX_HEADER_BYTES))
            if header_end < 0:
                raise BadRequest(MULTIPART_ERROR)
            headers = _parse_headers(_read(raw, header_start, header_end - header_start))
            body_start = header_end + 4
        next_delim = _find(raw, b"\r\n" + delimiter, body_start, size)
        if next_delim < 0:
            raise BadRequest(MULTIPART_ERROR)
        parts.append(Part(headers=headers, body=FileSlice(raw, body_start, next_delim)))
        pos = next_delim + 2
