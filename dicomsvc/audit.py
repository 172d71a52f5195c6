"""The audit log: one JSON line per API request, written when its response is ready (docs/auth.md).

A line holds who (the token's `sub`), what (method, path, data action, partition, study) and the
outcome (status), with the request's correlation id and Microsoft's custom audit headers
(`X-MS-AZUREDICOM-AUDIT-*`, at most 10 of at most 2048 characters, else 400). Never the token,
the query string (it can carry patient data) or the body.

With DICOM_AUDIT_LOG set, lines are appended to that file: opened with O_APPEND and written with
one write() each, so lines of concurrent threads and processes never interleave; a file renamed
or removed (log rotation) is opened anew. Otherwise they go to the `dicomsvc.audit` logger.
"""

from __future__ import annotations

import functools
import logging
import os
import re
import threading
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from django.conf import settings
from django.http import HttpRequest, HttpResponseBase

from dicomsvc.api.auth import TokenUser, view_action
from dicomsvc.errors import ApplicationError, AuditHeaderTooLarge, TooManyAuditHeaders

logger = logging.getLogger("dicomsvc.audit")

AUDIT_HEADER_PREFIX = "X-MS-AZUREDICOM-AUDIT-"
MAX_AUDIT_HEADERS = 10
MAX_AUDIT_HEADER_LENGTH = 2048
_META_PREFIX = "HTTP_" + AUDIT_HEADER_PREFIX.replace("-", "_")
# An X-Request-Id a proxy set is kept as the correlation id when it looks like one.
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
UNAUDITED_PATHS = ("/health/check",)


def audit_headers(meta: Mapping[str, Any]) -> dict[str, str]:
    """The request's custom audit headers by name; AuditHeaderTooLarge or TooManyAuditHeaders (400)."""
    headers: dict[str, str] = {}
    for key, value in meta.items():
        if key.startswith(_META_PREFIX):
            name = key[len("HTTP_") :].replace("_", "-")
            if len(value) > MAX_AUDIT_HEADER_LENGTH:
                raise AuditHeaderTooLarge(MAX_AUDIT_HEADER_LENGTH, name, len(value))
            headers[name] = value
    if len(headers) > MAX_AUDIT_HEADERS:
        raise TooManyAuditHeaders(MAX_AUDIT_HEADERS, len(headers))
    return headers


def is_audited(request: HttpRequest) -> bool:
    return not request.path.startswith(settings.BROWSER_PATH_PREFIXES) and request.path not in UNAUDITED_PATHS


def audit_entry(request: HttpRequest, *, status: int, time: str, correlation: str) -> dict[str, Any]:
    """The audit line of a request whose response has `status`."""
    match = request.resolver_match
    kwargs: Mapping[str, Any] = match.kwargs if match is not None else {}
    view_class = getattr(match.func, "view_class", None) if match is not None else None
    method = request.method or ""
    user = getattr(request, "user", None)  # DRF sets it on Django's request once it authenticated
    try:
        headers = audit_headers(request.META)
    except ApplicationError:
        headers = {}  # the request was answered 400 for them; the entry records that, not them
    return {
        "time": time,
        "user": user.subject if isinstance(user, TokenUser) else None,
        "method": method,
        "path": request.path,
        "status": status,
        "action": view_action(view_class, method) if view_class is not None else None,
        "partition": kwargs.get("partition_name"),
        "correlationId": correlation,
        "study": kwargs.get("study"),
        "customHeaders": headers,
    }


@dataclass(eq=False)
class _Opened:
    """One open descriptor of the audit file, the file it is, and the writes using it now."""

    fd: int
    identity: tuple[int, int]
    writers: int = 0
    replaced: bool = False


def _identity(path: str) -> tuple[int, int] | None:
    try:
        current = os.stat(path)
    except FileNotFoundError:
        return None
    return current.st_dev, current.st_ino


class AuditFile:
    """An append-only JSON-lines file shared by every thread and process that writes to it.

    The lock guards only which descriptor is current and how many writes use it; no system
    call runs under it but the rare reopen. A stat and a write each let go of the GIL, and
    under load a thread waits to get it back: held across them, the lock made every other
    request thread of the process wait for that thread too. A descriptor replaced after
    rotation is closed by the last write still using it, never under a write.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._current: _Opened | None = None

    def _reopen(self) -> _Opened:
        """Opens the path anew and makes it current (caller holds the lock)."""
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
        opened = os.fstat(fd)
        previous, self._current = self._current, _Opened(fd, (opened.st_dev, opened.st_ino))
        if previous is not None:
            previous.replaced = True
            if previous.writers == 0:
                os.close(previous.fd)
        return self._current

    @contextmanager
    def writing(self) -> Iterator[int]:
        """A descriptor of the file the path names now (opened anew once it was rotated or
        removed), kept open until the block ends."""
        identity = _identity(self.path)
        with self._lock:
            current = self._current
            if current is None or current.identity != identity:
                current = self._reopen()
            current.writers += 1
        try:
            yield current.fd
        finally:
            with self._lock:
                current.writers -= 1
                if current.replaced and current.writers == 0:
                    os.close(current.fd)

    def append(self, line: bytes) -> None:
        with self.writing() as fd:
            written = os.write(fd, line)
        if written != len(line):
            raise OSError(f"audit line cut short ({written} of {len(line)} bytes written)")


class AuditTrail:
    """One request's audit: started when it arrives, written when its response is ready."""

    def __init__(self, request: HttpRequest) -> None:
        self.request = request
        self.time = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        given: str = request.META.get("HTTP_X_REQUEST_ID", "")
        self.correlation = given if _REQUEST_ID.fullmatch(given) else str(uuid.uuid4())

    def finish(self, response: HttpResponseBase) -> None:
        response["X-Request-Id"] = self.correlation
        entry = audit_entry(self.request, status=response.status_code, time=self.time, correlation=self.correlation)
        audit_write(entry)


@functools.cache
def audit_file(path: str) -> AuditFile:
    return AuditFile(path)


def audit_write(entry: dict[str, Any]) -> None:
    line = orjson.dumps(entry)
    path: str = settings.DICOM_AUDIT_LOG
    if not path:
        logger.info(line.decode())
        return
    try:
        audit_file(path).append(line + b"\n")
    except OSError as exc:
        # The line is not lost: the logger gets it with the reason.
        logger.error("Audit file %s not written (%s): %s", path, exc, line.decode())
