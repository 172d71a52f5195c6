"""ASGI entry point (uvicorn / gunicorn with uvicorn workers).

Wrapped in a body-size guard: a body larger than DICOM_MAX_STOW_BYTES is refused with 413
as soon as its Content-Length is known, or as soon as a chunked body crosses the limit,
before Django spools it to disk.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from asgiref.sync import ThreadSensitiveContext

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dicomsvc.settings")

from django.conf import settings  # noqa: E402
from django.core.asgi import get_asgi_application  # noqa: E402
from django.core.handlers.asgi import ASGIHandler  # noqa: E402

browser_application = get_asgi_application()


class ApiHandler(ASGIHandler):
    """Django for the DICOMweb API: the same URLs and views, with API_MIDDLEWARE only."""

    # Django slices every response body into 64 KiB messages, copying each; blobs are
    # streamed in 1 MiB chunks already, so pass them on whole.
    chunk_size = 4 * 1024 * 1024

    def load_middleware(self, is_async: bool = False) -> None:
        # Django builds the chain from settings.MIDDLEWARE; swap the list in for the build
        # only (this runs once, at import, before any request).
        full = settings.MIDDLEWARE
        settings.MIDDLEWARE = settings.API_MIDDLEWARE
        try:
            super().load_middleware(is_async)
        finally:
            settings.MIDDLEWARE = full


    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            raise ValueError(f"Django can only handle ASGI/HTTP connections, not {scope['type']}.")
        # Django runs each request's synchronous code (the view, the ORM) on one thread of its
        # own, started and joined per request: a quarter of a one-instance retrieve's CPU. Lend
        # each request an idle single-thread executor instead (asgiref's supported way).
        executor = _executors.acquire()
        try:
            async with ThreadSensitiveContext(executor=executor):
                await self.handle(scope, receive, send)
        finally:
            _executors.release(executor)


class _ExecutorPool:
    """Single-thread executors lent to one request at a time.

    Keeps up to `max_idle` between requests; past a burst, the extra threads are let go.
    """

    def __init__(self, max_idle: int = 64) -> None:
        self._idle: list[ThreadPoolExecutor] = []
        self._lock = threading.Lock()
        self._max_idle = max_idle

    def acquire(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._idle:
                return self._idle.pop()
        return ThreadPoolExecutor(max_workers=1, thread_name_prefix="dicomsvc-request")

    def release(self, executor: ThreadPoolExecutor) -> None:
        with self._lock:
            if len(self._idle) < self._max_idle:
                self._idle.append(executor)
                return
        executor.shutdown(wait=False)


_executors = _ExecutorPool()
api_application = ApiHandler()


async def django_application(scope: dict[str, Any], receive: Any, send: Any) -> None:
    path = scope.get("path", "")
    if scope["type"] == "http" and not path.startswith(settings.BROWSER_PATH_PREFIXES):
        await api_application(scope, receive, send)
    else:
        await browser_application(scope, receive, send)


from partitions.checks import partitions_guard  # noqa: E402

partitions_guard()

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


async def _send_413(send: Send, limit: int) -> None:
    body = f"The request exceeded the allowed limit of {limit} bytes.".encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [(b"content-type", b"text/plain; charset=utf-8"), (b"connection", b"close")],
        }
    )
    await send({"type": "http.response.body", "body": body})


class BodyLimitMiddleware:
    def __init__(self, app: Callable[..., Awaitable[None]], limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        has_body = False
        for name, value in scope.get("headers", []):
            if name == b"content-length" and value.isdigit() and int(value) > self.limit:
                await _send_413(send, self.limit)
                return
            if name in (b"content-length", b"transfer-encoding"):
                has_body = True
        if not has_body:
            # HTTP/1.1: a request without Content-Length or Transfer-Encoding has no body, so
            # there is nothing to count (most GETs); skip the wrappers.
            await self.app(scope, receive, send)
            return
        received = 0
        exceeded = False
        started = False

        async def limited_receive() -> Message:
            nonlocal received, exceeded
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    exceeded = True
                    # Django treats a disconnect as an aborted request and answers nothing.
                    return {"type": "http.disconnect"}
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        await self.app(scope, limited_receive, tracking_send)
        if exceeded and not started:
            await _send_413(send, self.limit)


application = BodyLimitMiddleware(django_application, settings.DICOM_MAX_STOW_BYTES)
