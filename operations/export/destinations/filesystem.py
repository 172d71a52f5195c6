"""The `filesystem` destination: a directory under one of DICOM_EXPORT_FILESYSTEM_ROOTS.

Paths are resolved (symlinks included) and compared with the resolved roots, when the
request arrives and again when the worker starts, so neither `..` nor a symlink leads out.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from django.conf import settings

from dicomsvc.errors import BadRequest
from operations.export.destinations.base import DestinationUnavailable, SourceStream, SourceUnreadable
from operations.export.fields import FieldInvalid, object_fields, required_string

TYPE = "filesystem"
PATH = "destination.settings.path"
CHUNK = 1024 * 1024
# The admin shows the end of an errors.log: at most this many bytes are read.
ERROR_LOG_TAIL_BYTES = 64 * 1024


def _under_root(real: str) -> bool:
    for root in settings.DICOM_EXPORT_FILESYSTEM_ROOTS:
        real_root = os.path.realpath(root)
        if os.path.commonpath([real, real_root]) == real_root:
            return True
    return False


def filesystem_destination_parse(value: Any) -> FilesystemDestination:
    if not settings.DICOM_EXPORT_FILESYSTEM_ROOTS:
        raise BadRequest("The export destination 'filesystem' is disabled: DICOM_EXPORT_FILESYSTEM_ROOTS is not set.")
    fields = object_fields(value, field="destination.settings", names={"path": "path"})
    path = required_string(fields, "path", field=PATH)
    if not os.path.isabs(path):
        raise FieldInvalid(PATH, f"'{path}' is not an absolute path.")
    if ".." in path.split("/"):
        raise FieldInvalid(PATH, f"'{path}' must not contain '..'.")
    real = os.path.realpath(path)
    if not _under_root(real):
        raise FieldInvalid(PATH, f"'{path}' is not under a directory this server exports to.")
    if os.path.exists(real) and not os.path.isdir(real):
        raise FieldInvalid(PATH, f"'{path}' is not a directory.")
    return FilesystemDestination(path=real)


@dataclass(frozen=True)
class FilesystemDestination:
    path: str  # resolved when the request was accepted

    def parameters(self) -> dict[str, Any]:
        return {"type": TYPE, "path": self.path}

    def open(self, *, folder: str) -> FilesystemSink:
        # The roots may have changed, or a symlink replaced a directory, since the request.
        real = os.path.realpath(self.path)
        if not _under_root(real):
            raise DestinationUnavailable(
                f"The export path '{self.path}' is no longer under a directory this server exports to."
            )
        return FilesystemSink(directory=os.path.join(real, folder))


def error_log_tail(*, href: str, limit: int) -> list[str] | None:
    """The last `limit` lines of an export's `errors.log` named by its `file://` href, or None
    when it is not a file under an export root (any more) or cannot be read."""
    if not href.startswith("file://"):
        return None
    real = os.path.realpath(unquote(urlsplit(href).path))
    if not _under_root(real):
        return None
    try:
        with open(real, "rb") as log:
            log.seek(0, os.SEEK_END)
            log.seek(max(0, log.tell() - ERROR_LOG_TAIL_BYTES))
            text = log.read().decode("utf-8", "replace")
    except OSError:
        return None
    return [line for line in text.splitlines() if line.strip()][-limit:]


def _unavailable(exc: OSError) -> DestinationUnavailable:
    return DestinationUnavailable(f"The export destination cannot be written: {exc}")


class FilesystemSink:
    def __init__(self, *, directory: str) -> None:
        self.directory = directory
        self._errors_path = os.path.join(directory, "errors.log")
        self.error_href = Path(self._errors_path).as_uri()

    def prepare(self, *, resume: bool) -> None:
        # Opening for append creates the log and keeps an earlier run's lines.
        try:
            os.makedirs(os.path.join(self.directory, "results"), exist_ok=True)
            with open(self._errors_path, "ab"):
                pass
        except OSError as exc:
            raise _unavailable(exc) from exc

    def write(self, *, name: str, stream: SourceStream) -> None:
        target = os.path.join(self.directory, name)
        # A fixed temporary name: a resumed run overwrites what a killed one left behind.
        partial = os.path.join(os.path.dirname(target), f".{os.path.basename(target)}.part")
        try:
            os.makedirs(os.path.dirname(target), exist_ok=True)
            fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, 0o666)
        except OSError as exc:
            raise _unavailable(exc) from exc
        try:
            with os.fdopen(fd, "wb") as out:
                shutil.copyfileobj(stream, out, CHUNK)
                out.flush()
                os.fsync(out.fileno())
            os.replace(partial, target)
        except SourceUnreadable:
            _remove(partial)
            raise
        except OSError as exc:
            _remove(partial)
            raise _unavailable(exc) from exc

    def error_append(self, line: str) -> None:
        try:
            with open(self._errors_path, "a", encoding="utf-8") as log:
                log.write(line + "\n")
                log.flush()
                os.fsync(log.fileno())
        except OSError as exc:
            raise _unavailable(exc) from exc

    def flush(self) -> None:
        """Lines are made durable as they are appended."""


def _remove(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass
