"""Django's ASGI handler, with the request body collected by `BodyCollector`.

Django's `ASGIHandler.read_body` writes every chunk into a spooled temporary file that rolls
over to disk past FILE_UPLOAD_MAX_MEMORY_SIZE; reading that back as the STOW parser needs it
would copy the body once more (and a large one would be written to disk twice). Here the body
is collected once (one bytes object when small, a temporary file past the limit) and is handed
to the views as `request.dicom_body` (`dicomsvc.api.body.request_body_file`).

The only overrides of Django: `read_body` and `create_request` (each calls Django's own or
does what it does), and `chunk_size`. `tests/test_asgi_body.py` fails when Django changes the
methods overridden here, so the override is re-checked on every Django upgrade.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import IO, Any, BinaryIO

from django.core.exceptions import RequestAborted
from django.core.handlers.asgi import ASGIHandler, ASGIRequest
from django.http import HttpResponseBase

from dicomsvc.api.body import BODY_ATTRIBUTE, BodyCollector


class BodyASGIHandler(ASGIHandler):
    # Django slices every response body into 64 KiB messages, copying each; blobs are read
    # in 1 MiB chunks already, so pass them on whole.
    chunk_size = 4 * 1024 * 1024

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
