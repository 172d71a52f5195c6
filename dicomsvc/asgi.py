"""ASGI entry point (uvicorn / gunicorn with uvicorn workers).

Wrapped in a body-size guard: a body larger than DICOM_MAX_STOW_BYTES is refused with 413
as soon as its Content-Length is known, or as soon as a chunked body crosses the limit,
before Django spools it to disk.
"""

from __future__ import annotations

import asyncio
import gc
import os
import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from asgiref.sync import ThreadSensitiveContext, sync_to_async

from dicomsvc.malloc import IdleRelease, malloc_tune

# First, before anything starts a thread: glibc fixes its arena limit once threads need arenas.
malloc_tune()

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dicomsvc.settings")

from django.conf import settings  # noqa: E402
from django.core import signals  # noqa: E402
from django.core.asgi import get_asgi_application  # noqa: E402
from django.core.exceptions import RequestAborted  # noqa: E402
from django.core.handlers.asgi import ASGIHandler, get_script_prefix  # noqa: E402
from django.http import HttpResponseBase  # noqa: E402
from django.urls import set_script_prefix  # noqa: E402

from dicomsvc.api.body import BodyCollector  # noqa: E402

browser_application = get_asgi_application()


class ApiHandler(ASGIHandler):
    """Django for the DICOMweb API: the same URLs and views, API_MIDDLEWARE only, one thread hop.

    Django's own ASGI path hops to a worker thread three times per request (the
    `request_started` receivers, the view, `response.close()`), ~0.15 ms of CPU each. The API's
    views and middleware are all synchronous, so its whole synchronous part runs in one hop
    through a synchronous middleware chain; only sending the response stays on the event loop.
    """

    # Django slices every response body into 64 KiB messages, copying each; blobs are
    # streamed in 1 MiB chunks already, so pass them on whole.
    chunk_size = 4 * 1024 * 1024

    def load_middleware(self, is_async: bool = False) -> None:
        # Django builds the chain from settings.MIDDLEWARE; swap the list in for the build
        # only (this runs once, at import, before any request). Synchronous: see the class.
        full = settings.MIDDLEWARE
        settings.MIDDLEWARE = settings.API_MIDDLEWARE
        try:
            super().load_middleware(is_async=False)
        finally:
            settings.MIDDLEWARE = full

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            raise ValueError(f"Django can only handle ASGI/HTTP connections, not {scope['type']}.")
        # Django runs each request's synchronous code (the view, the ORM) on one thread of its
        # own, started and joined per request: a quarter of a one-instance retrieve's CPU. Lend
        # each request an idle single-thread executor instead (asgiref's supported way).
        executor = _executors.acquire()
        _idle.request_started()
        try:
            async with ThreadSensitiveContext(executor=executor):
                await self.handle(scope, receive, send)
        finally:
            _executors.release(executor)
            _idle.request_finished()

    async def handle(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        """`ASGIHandler.handle` with the synchronous part in one hop; same disconnect handling."""
        try:
            body_file = await self.read_body(receive)
        except RequestAborted:
            return
        set_script_prefix(get_script_prefix(scope))

        async def process_request() -> HttpResponseBase:
            response = await sync_to_async(self._respond, thread_sensitive=True)(scope, body_file)
            try:
                await self.send_response(response, send)
            except asyncio.CancelledError:
                pass  # the client went away while the response was being sent
            finally:
                if response.streaming:
                    await sync_to_async(response.close, thread_sensitive=True)()
            return response

        # A disconnect while the view runs cancels the task (the thread still finishes the
        # view: a store is never cut short halfway).
        tasks = [
            asyncio.create_task(self.listen_for_disconnect(receive)),
            asyncio.create_task(process_request()),
        ]
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in tasks:
            if task.done():
                try:
                    task.result()
                except (RequestAborted, asyncio.CancelledError):
                    pass
                except AssertionError:
                    body_file.close()
                    raise
            else:
                task.cancel()
                try:
                    await task
                except asyncio.CancelledError:
                    pass
        body_file.close()

    async def read_body(self, receive: Any) -> Any:
        """The body as `BodyCollector` leaves it: one bytes object when small, else a temporary
        file (Django's spooled file copied each chunk in, then grew and copied again)."""
        collector = BodyCollector()
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                collector.close()
                raise RequestAborted()
            if message.get("body"):
                collector.write(message["body"])
            if not message.get("more_body", False):
                return collector.finish()

    def _respond(self, scope: dict[str, Any], body_file: Any) -> HttpResponseBase:
        signals.request_started.send(sender=self.__class__, scope=scope)
        request, response = self.create_request(scope, body_file)
        if request is not None:
            response = self.get_response(request)
            response._handler_class = self.__class__  # type: ignore[attr-defined]
        if not response.streaming:
            # A complete body: release the request's resources (its database connection goes
            # back to the pool via request_finished) in this hop, before sending.
            response.close()
        return response


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
# Buffers kept for reuse under load (dicomsvc.malloc) go back to the kernel after 2 s without requests.
_idle = IdleRelease(delay=2.0)
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


def _gc_settle() -> None:
    """Keep the cyclic garbage collector off what lives as long as the process.

    Django, DRF, pydicom and numpy leave about a million objects that every full collection
    walked again (~90 ms each, one every ~150 one-instance STOWs: ~0.5 ms of each STOW's CPU).
    Frozen, they are never walked. The thresholds stay Python's: a first threshold of 20 000
    saved ~0.1 ms per STOW but let cyclic garbage hold on to request buffers (+70 MiB RSS
    per worker over the benchmark).
    """
    gc.collect()
    gc.freeze()


_gc_settle()
