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
from collections.abc import Mapping
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


class AuditFile:
    """An append-only JSON-lines file shared by every thread and process that writes to it."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._fd: int | None = None
        self._identity: tuple[int, int] | None = None

    def _descriptor(self) -> int:
        """The open file, opened anew when the path names another file or none (rotated, removed)."""
        try:
            current = os.stat(self.path)
            identity: tuple[int, int] | None = (current.st_dev, current.st_ino)
        except FileNotFoundError:
            identity = None
        if self._fd is not None and identity == self._identity:
            return self._fd
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
        opened = os.fstat(fd)
        self._fd, self._identity = fd, (opened.st_dev, opened.st_ino)
        return fd

    def append(self, line: bytes) -> None:
        # The lock keeps a thread from writing to a descriptor another thread is replacing.
        with self._lock:
            written = os.write(self._descriptor(), line)
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
