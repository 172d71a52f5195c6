"""Django's ASGI handler with each request's synchronous part in one thread hop, and its body collected once.

This is the project's one fork of a framework class, kept because `make bench` showed it is
worth it (docs/benchmarks.md, "Issue #14"). `tests/test_asgi_handler.py` pins the Django
methods it overrides or relies on and fails when an upgrade changes them.

- `handle`: Django's own sends `request_started`, the middleware chain and view, and
  `response.close()` to a worker thread one after another, three hops per request. Here they
  run in one hop (`_respond`); only reading the body and sending the response stay on the
  event loop, and a streamed response is closed after it was sent. Disconnects are handled as
  Django handles them: a client that goes away while the view runs cancels nothing in the
  view's thread, so a store is never cut short halfway.
- `load_middleware`: the chain is built synchronous, since it runs in that one hop.
- `read_body` and `create_request`: Django writes every chunk into a spooled temporary file
  that rolls over to disk past FILE_UPLOAD_MAX_MEMORY_SIZE; reading that back as the STOW
  parser needs it would copy the body once more (and a large one would be written to disk
  twice). Here the body is collected once (one bytes object when small, a temporary file past
  the limit) and handed to the views as `request.dicom_body` (`dicomsvc.api.body`).
- `chunk_size`: Django slices every response body into 64 KiB messages, copying each; blobs
  are read in 1 MiB chunks already, so they are passed on whole.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import IO, Any, BinaryIO

from asgiref.sync import sync_to_async
from django.core import signals
from django.core.exceptions import RequestAborted
from django.core.handlers.asgi import ASGIHandler, ASGIRequest, get_script_prefix
from django.http import HttpResponseBase
from django.urls import set_script_prefix

from dicomsvc.api.body import BODY_ATTRIBUTE, BodyCollector


class ApiASGIHandler(ASGIHandler):
    chunk_size = 4 * 1024 * 1024

    def load_middleware(self, is_async: bool = False) -> None:
        super().load_middleware(is_async=False)

    async def read_body(self, receive: Any) -> BinaryIO:
        """The body, positioned at its start; RequestAborted if the client went away."""
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

    def create_request(
        self, scope: Mapping[str, Any], body_file: IO[bytes]
    ) -> tuple[ASGIRequest, None] | tuple[None, HttpResponseBase]:
        created = super().create_request(scope, body_file)
        request, _ = created
        if request is not None:
            setattr(request, BODY_ATTRIBUTE, body_file)
        return created

    async def handle(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
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
            return response

        responding = asyncio.create_task(process_request())
        tasks = [asyncio.create_task(self.listen_for_disconnect(receive)), responding]
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
        # As Django does, once both tasks ended: uvicorn sends its disconnect as soon as the body
        # is complete, which would cancel a close still running in process_request, and
        # request_finished would then go out in a thread hop of its own.
        if responding.cancelled():
            # No response to close: release the request's resources as Django does.
            await signals.request_finished.asend(sender=self.__class__)
        elif responding.exception() is None and (response := responding.result()).streaming:
            # A streamed response once sent (a complete one was closed in `_respond`).
            await sync_to_async(response.close, thread_sensitive=True)()
        body_file.close()

    def _respond(self, scope: dict[str, Any], body_file: BinaryIO) -> HttpResponseBase:
        """The synchronous part of a request, on one worker thread."""
        signals.request_started.send(sender=self.__class__, scope=scope)
        request, error_response = self.create_request(scope, body_file)
        response = error_response if request is None else self.get_response(request)
        assert response is not None
        if not response.streaming:
            # A complete body: release the request's resources (its database connection goes
            # back to the pool via request_finished) in this hop, before sending.
            response.close()
        return response
