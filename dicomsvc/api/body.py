"""Request bodies as seekable files: in memory up to FILE_UPLOAD_MAX_MEMORY_SIZE, on disk past it."""

from __future__ import annotations

import io
import tempfile
from typing import BinaryIO

from django.conf import settings
from django.http import HttpRequest
from rest_framework.request import Request

from dicomsvc.errors import PayloadTooLarge

CHUNK = 1024 * 1024
# The request attribute holding the body as the ASGI server's handler collected it (`dicomsvc.asgi_handler`).
BODY_ATTRIBUTE = "dicom_body"


class BodyCollector:
    """Collects a body arriving in chunks.

    A small body becomes one `bytes` object behind a `BytesIO`, joined once: the STOW parser
    and blob writer then work on views of it without copying (`studies.dicom.streams`). A
    body past the limit goes to a temporary file as it arrives, never whole in memory.
    """

    def __init__(self) -> None:
        self.size = 0
        self._chunks: list[bytes] = []
        self._spool: tempfile.SpooledTemporaryFile[bytes] | None = None

    def write(self, data: bytes) -> None:
        self.size += len(data)
        if self._spool is not None:
            self._spool.write(data)
            return
        self._chunks.append(data)
        if self.size > settings.FILE_UPLOAD_MAX_MEMORY_SIZE:
            self._spool = tempfile.SpooledTemporaryFile(max_size=0, mode="w+b")  # noqa: SIM115
            self._spool.rollover()
            for chunk in self._chunks:
                self._spool.write(chunk)
            self._chunks = []

    def finish(self) -> BinaryIO:
        """The body, positioned at its start."""
        if self._spool is not None:
            self._spool.seek(0)
            return self._spool  # type: ignore[return-value]
        body = io.BytesIO(b"".join(self._chunks))  # shares the joined bytes, no copy
        self._chunks = []
        return body

    def close(self) -> None:
        if self._spool is not None:
            self._spool.close()
        self._chunks = []


def request_body_file(request: HttpRequest | Request, *, limit: int) -> tuple[BinaryIO, int]:
    """The body as a seekable file and its size; 413 past `limit`.

    Under ASGI the server's handler (`dicomsvc.asgi_handler`) has collected the body already; reuse
    it. Other handlers (the test client, WSGI) give a forward-only stream, collected the same way.
    """
    declared = request.META.get("CONTENT_LENGTH")
    if declared and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(limit)
    collected: BinaryIO | None = getattr(request, BODY_ATTRIBUTE, None)
    if collected is not None:
        collected.seek(0, io.SEEK_END)
        size = collected.tell()
        collected.seek(0)
        if size > limit:
            raise PayloadTooLarge(limit)
        return collected, size
    collector = BodyCollector()
    while data := request.read(CHUNK):
        collector.write(data)
        if collector.size > limit:
            collector.close()
            raise PayloadTooLarge(limit)
    return collector.finish(), collector.size
