"""ASGI entry point (uvicorn / gunicorn with uvicorn workers).

Django's ASGI handler (one thread hop per request, the body collected once: `dicomsvc.asgi_handler`), wrapped in two
ASGI middlewares of ours:

- `BodyLimitMiddleware`: a body larger than DICOM_MAX_STOW_BYTES is refused with 413 as soon
  as its Content-Length is known, or as soon as a chunked body crosses the limit, before
  Django collects it.
- `ServerLifecycle`: at the ASGI lifespan's start-up the server refuses to start when data
  partitions were switched off over partitioned data (`partitions_guard`), and moves what
  lives as long as the process out of the garbage collector's way; each request holds off the
  idle memory release (`dicomsvc.malloc.IdleRelease`) and borrows the thread its synchronous
  code runs on from a pool.

Importing this module only builds the application; it does not touch the database.
"""

from __future__ import annotations

import gc
import logging
import os
import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import django
from asgiref.sync import ThreadSensitiveContext, sync_to_async

from dicomsvc.malloc import IdleRelease

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dicomsvc.settings")
logger = logging.getLogger(__name__)

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


def auth_startup() -> None:
    """Warns when the API is open to anyone; otherwise reads the issuer's keys before the first request."""
    from django.conf import settings

    from dicomsvc.api.tokens import issuer_get

    if not settings.DICOM_AUTH_ENABLED:
        logger.warning(
            "DICOM_AUTH_ENABLED is false: every DICOMweb route answers unauthenticated requests (docs/auth.md)"
        )
        return
    issuer_get(settings.DICOM_AUTH_AUTHORITY).prefetch()


def server_startup() -> None:
    """What the server checks and settles before it takes requests (ASGI lifespan start-up).

    `gc.freeze()`: Django, DRF, pydicom and numpy leave about a million objects that live as
    long as the process; frozen, the cyclic collector no longer walks them on every full
    collection. The collection thresholds stay Python's: larger ones let cyclic garbage hold
    on to request buffers longer.
    """
    from django.db import connections

    from partitions.checks import partitions_guard

    try:
        partitions_guard()
    finally:
        connections.close_all()
    auth_startup()
    gc.collect()
    gc.freeze()


class ExecutorPool:
    """Single-thread executors lent to one request at a time.

    Django runs a request's synchronous code (middleware, the view, the ORM) on one thread of
    the request's own, started and joined per request by its `ThreadSensitiveContext`. A request
    here borrows an idle thread instead, through asgiref's documented `executor` argument: the
    outer context, ours, sets the thread, and Django's nested context reuses it. Keeps up to
    `MAX_IDLE` between requests; past a burst, the extra threads are let go.
    """

    MAX_IDLE = 64

    def __init__(self) -> None:
        self._idle: list[ThreadPoolExecutor] = []
        self._lock = threading.Lock()

    def acquire(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._idle:
                return self._idle.pop()
        return ThreadPoolExecutor(max_workers=1, thread_name_prefix="dicomsvc-request")

    def release(self, executor: ThreadPoolExecutor) -> None:
        with self._lock:
            if len(self._idle) < self.MAX_IDLE:
                self._idle.append(executor)
                return
        executor.shutdown(wait=False)


class ServerLifecycle:
    def __init__(self, app: Callable[..., Awaitable[None]], *, idle: IdleRelease, executors: ExecutorPool) -> None:
        self.app = app
        self.idle = idle
        self.executors = executors

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        executor = self.executors.acquire()
        self.idle.request_started()
        try:
            async with ThreadSensitiveContext(executor=executor):
                await self.app(scope, receive, send)
        finally:
            self.executors.release(executor)
            self.idle.request_finished()

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await sync_to_async(server_startup, thread_sensitive=False)()
                except Exception as exc:
                    await send({"type": "lifespan.startup.failed", "message": str(exc) or type(exc).__name__})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return


def application_build() -> ServerLifecycle:
    """Django's ASGI application, as `django.core.asgi.get_asgi_application` builds it, wrapped."""
    from django.conf import settings

    from dicomsvc.asgi_handler import ApiASGIHandler

    django.setup(set_prefix=False)
    handler = ApiASGIHandler()
    # Buffers kept for reuse under load go back to the kernel after 2 s without requests.
    guarded = BodyLimitMiddleware(handler, settings.DICOM_MAX_STOW_BYTES)
    return ServerLifecycle(guarded, idle=IdleRelease(delay=2.0), executors=ExecutorPool())


application = application_build()
