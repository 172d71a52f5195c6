"""Blob storage for instance files, keyed by partition and watermark.

Blobs are written before the row that points at them and removed after that row is gone.
The local backend fsyncs each file so a committed row never points at a lost write.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from typing import IO, Any, cast

from django.core.files import File
from django.core.files.storage import FileSystemStorage, Storage, storages

from studies.dicom.streams import CHUNK, ConcatReader, Readable


class DurableFileSystemStorage(FileSystemStorage):
    """FileSystemStorage that fsyncs each new file and its directory."""

    def _save(self, name: str, content: Any) -> str:
        # Django documents `_save` as the method a storage implements; django-stubs omits it.
        saved: str = super()._save(name, content)  # type: ignore[misc]
        path = self.path(saved)
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        _fsync_directory(os.path.dirname(path))
        return saved

    def write_new(self, name: str, stream: Readable) -> None:
        """Write a file that must not exist yet, durably: one open, write, fsync, close.

        What `save` does minus the name checks and free-name search (blob names are built
        here and never reused) and minus a second open for the fsync, on every STOW.
        """
        path = self.path(name)
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
        mode = self.file_permissions_mode if self.file_permissions_mode is not None else 0o666
        try:
            fd = os.open(path, flags, mode)
        except FileNotFoundError:
            os.makedirs(os.path.dirname(path), mode=self.directory_permissions_mode or 0o777, exist_ok=True)
            fd = os.open(path, flags, mode)
        except FileExistsError:
            raise OSError(f"blob {name} already exists") from None
        try:
            with os.fdopen(fd, "wb", closefd=False) as out:
                for data in _chunks(stream):
                    out.write(data)
            os.fsync(fd)
        except BaseException:
            os.close(fd)
            os.unlink(path)  # a partial file must not stay behind under the blob's name
            raise
        os.close(fd)
        _fsync_directory(os.path.dirname(path))


def _chunks(stream: Readable) -> Iterator[bytes | memoryview]:
    if isinstance(stream, ConcatReader):
        yield from stream.chunks()  # views of a body in memory: written without a copy
        return
    stream.seek(0)
    while data := stream.read(CHUNK):
        yield data


def _fsync_directory(path: str) -> None:
    dir_fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def storage() -> Storage:
    return storages["dicom"]


def blob_name(*, partition_key: int, watermark: int) -> str:
    # A short hash prefix spreads files over 4096 directories (and S3 key prefixes).
    spread = hashlib.sha1(str(watermark).encode()).hexdigest()[:3]
    return f"{partition_key}/{spread}/{watermark}.dcm"


class _Chunked(File):
    """A django File over any readable stream, read in 1 MB chunks."""

    def __init__(self, stream: Readable, size: int) -> None:
        # File forwards only read, seek and tell to the stream here, which every Readable has.
        super().__init__(cast(IO[bytes], stream), name="blob.dcm")
        self._stream = stream
        self._size = size

    @property
    def size(self) -> int:
        return self._size

    def chunks(self, chunk_size: int | None = None) -> Iterator[bytes]:
        self._stream.seek(0)
        while True:
            data = self._stream.read(chunk_size or CHUNK)
            if not data:
                return
            yield data


def blob_write(*, name: str, stream: Readable, size: int) -> None:
    target = storage()
    if isinstance(target, DurableFileSystemStorage):
        target.write_new(name, stream)
        return
    saved = target.save(name, _Chunked(stream, size))
    if saved != name:
        # Names embed a never-reused watermark; a different name means a stray file was
        # already there. Remove our copy and refuse rather than point a row at it.
        target.delete(saved)
        raise OSError(f"blob {name} already exists")


def blob_open(*, name: str) -> IO[bytes]:
    return storage().open(name, "rb")


class BlobDeleteFailed(Exception):
    """The storage backend refused to remove a blob; the caller queues it for a retry."""


def blob_delete(*, name: str) -> None:
    """Remove a blob; BlobDeleteFailed when the store refused."""
    try:
        storage().delete(name)
    except Exception as exc:  # any backend error
        raise BlobDeleteFailed(f"could not delete blob {name}: {exc or exc.__class__.__name__}") from exc

