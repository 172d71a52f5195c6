"""Request bodies as seekable files, spooled to disk above a few MB."""

from __future__ import annotations

import io
import tempfile
from typing import BinaryIO

from django.conf import settings
from django.http import HttpRequest

from dicomsvc.errors import PayloadTooLarge

CHUNK = 1024 * 1024


def request_body_file(request: HttpRequest, *, limit: int) -> tuple[BinaryIO, int]:
    """The body as a seekable file and its size; 413 past `limit`.

    Under ASGI Django has already spooled the body to a temporary file; reuse it. Other
    handlers (the test client, WSGI) give a forward-only stream, copied to a spooled file.
    """
    declared = request.META.get("CONTENT_LENGTH")
    if declared and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(limit)
    stream = getattr(request, "_stream", None)
    if isinstance(stream, tempfile.SpooledTemporaryFile) or isinstance(stream, io.BytesIO):
        stream.seek(0, io.SEEK_END)
        size = stream.tell()
        stream.seek(0)
        if size > limit:
            raise PayloadTooLarge(limit)
        return stream, size  # type: ignore[return-value]
    spool = tempfile.SpooledTemporaryFile(max_size=settings.FILE_UPLOAD_MAX_MEMORY_SIZE, mode="w+b")
    size = 0
    while True:
        data = request.read(CHUNK)
        if not data:
            break
        size += len(data)
        if size > limit:
            spool.close()
            raise PayloadTooLarge(limit)
        spool.write(data)
    spool.seek(0)
    return spool, size  # type: ignore[return-value]
