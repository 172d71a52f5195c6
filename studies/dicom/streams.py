"""File-like views over parts of a larger file, so multipart parts are never copied.

A STOW body is spooled to one temporary file by the ASGI handler; each part is a
`FileSlice` over it, and a stored blob is `prefix bytes + slice` (see `ConcatReader`).
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Protocol

CHUNK = 1024 * 1024


class Readable(Protocol):
    """A seekable binary stream as the readers use it: a file, or a view of part of one."""

    def read(self, size: int = ..., /) -> bytes: ...

    def seek(self, offset: int, whence: int = ..., /) -> int: ...

    def tell(self) -> int: ...


class ConcatReader(io.RawIOBase):
    """Read-only, seekable view of `prefix` followed by bytes [start, end) of a seekable file.

    Views of one file share its position, so every read seeks first; readers of one request
    are sequential, never concurrent.
    """

    def __init__(self, prefix: bytes, body: Readable, body_offset: int = 0, body_end: int | None = None) -> None:
        super().__init__()
        if isinstance(body, ConcatReader) and not body._prefix:
            # A view of a view (a normalised part over its request body): read the outer body
            # directly, so a body in memory stays one buffer for `chunks`.
            body_end = body._body_offset + (body._size if body_end is None else body_end)
            body_offset += body._body_offset
            body = body._body
        self._prefix: bytes = prefix
        self._body: Readable = body
        # A body in memory is read through a view of its buffer: no seek, one copy per read
        # and none at all for `chunks`.
        self._memory = memoryview(body.getvalue()) if isinstance(body, io.BytesIO) else None
        self._body_offset: int = body_offset
        self._pos = 0
        if body_end is None:
            body.seek(0, io.SEEK_END)
            body_end = body.tell()
        self._size: int = len(prefix) + body_end - body_offset

    @property
    def size(self) -> int:
        return self._size

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            size = self._size - self._pos
        head = b""
        if self._pos < len(self._prefix) and size > 0:
            head = self._prefix[self._pos : self._pos + size]
            self._pos += len(head)
            size -= len(head)
        data = self._body_read(min(size, self._size - self._pos)) if size > 0 and self._pos < self._size else b""
        return head + data if head else data

    def _body_read(self, size: int) -> bytes:
        start = self._body_offset + self._pos - len(self._prefix)
        if self._memory is not None:
            data = self._memory[start : start + size].tobytes()
        else:
            self._body.seek(start)
            data = self._body.read(size)
        self._pos += len(data)
        return data

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def chunks(self, chunk_size: int = CHUNK) -> Iterator[bytes | memoryview]:
        """The whole content in order; views of the buffer, not copies, for a body in memory."""
        if self._memory is not None:
            if self._prefix:
                yield self._prefix
            end = self._body_offset + self._size - len(self._prefix)
            for start in range(self._body_offset, end, chunk_size):
                yield self._memory[start : min(start + chunk_size, end)]
            return
        self.seek(0)
        while True:
            data = self.read(chunk_size)
            if not data:
                return
            yield data


class FileSlice(ConcatReader):
    """Bytes [start, end) of a seekable file, e.g. one multipart part of a spooled body."""

    def __init__(self, raw: Readable, start: int, end: int) -> None:
        super().__init__(b"", raw, start, end)
