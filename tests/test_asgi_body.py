"""dicomsvc.asgi_body: the one override of Django's ASGI handler, pinned to the Django it was written for."""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import io

import pytest
from django.core.exceptions import RequestAborted
from django.core.handlers.asgi import ASGIHandler

from dicomsvc.asgi_body import BodyASGIHandler

# sha256 of `inspect.getsource` of each ASGIHandler method the override depends on, in Django 5.2.
# `read_body` and `create_request` are replaced; `handle` must still call read_body, pass its
# result to create_request and close it at the end; `chunk_bytes` must still slice by `chunk_size`.
PINNED = {
    "read_body": "cf4aa904631d5410206f1a6b12ef0c74e99e4bd7313232c8e61f7a09a66a95e1",
    "create_request": "5eae59c6696013ffad47c3c05da5820dc7e17b2a3c8a09f59e12fd9bede5dc4f",
    "handle": "98faeb5bef800331e6a8002fbc96b30e4122a23438ae45a047190a531ea11323",
    "chunk_bytes": "6c045731cd77bd2da8253e0a55f1d1e8c9c6c78f412f73a4592d5df5dfb6a6ad",
}


@pytest.mark.parametrize("name", sorted(PINNED))
def test_the_django_methods_the_override_relies_on_are_unchanged(name):
    source = inspect.getsource(getattr(ASGIHandler, name))
    assert hashlib.sha256(source.encode()).hexdigest() == PINNED[name], (
        f"Django's ASGIHandler.{name} changed: re-check dicomsvc/asgi_body.py against it (the body it reads, "
        "what create_request returns, that handle() closes the body), then update PINNED here."
    )


def test_the_overridden_signatures_match_djangos():
    for name in ("read_body", "create_request"):
        ours = inspect.signature(getattr(BodyASGIHandler, name)).parameters
        assert list(ours) == list(inspect.signature(getattr(ASGIHandler, name)).parameters)


def _receiver(messages: list[dict]):  # noqa: ANN202
    queue = list(messages)

    async def receive() -> dict:
        return queue.pop(0)

    return receive


def test_a_small_body_is_one_object_and_a_large_one_is_spooled(settings):
    settings.FILE_UPLOAD_MAX_MEMORY_SIZE = 1000
    handler = BodyASGIHandler.__new__(BodyASGIHandler)  # read_body needs no middleware
    small = asyncio.run(handler.read_body(_receiver([
        {"type": "http.request", "body": b"a" * 400, "more_body": True},
        {"type": "http.request", "body": b"b" * 100},
    ])))  # fmt: skip
    assert isinstance(small, io.BytesIO) and small.read() == b"a" * 400 + b"b" * 100
    large = asyncio.run(handler.read_body(_receiver([
        {"type": "http.request", "body": b"a" * 800, "more_body": True},
        {"type": "http.request", "body": b"b" * 800},
    ])))  # fmt: skip
    assert not isinstance(large, io.BytesIO) and large.read() == b"a" * 800 + b"b" * 800
    large.close()
    with pytest.raises(RequestAborted):
        asyncio.run(handler.read_body(_receiver([
            {"type": "http.request", "body": b"a", "more_body": True}, {"type": "http.disconnect"},
        ])))  # fmt: skip


def test_the_request_carries_the_collected_body():
    handler = BodyASGIHandler.__new__(BodyASGIHandler)
    scope = {
        "type": "http", "method": "POST", "path": "/v2/studies", "query_string": b"", "root_path": "",
        "headers": [(b"content-length", b"3")],
    }  # fmt: skip
    body = io.BytesIO(b"abc")
    request, error = handler.create_request(scope, body)
    assert error is None and request.dicom_body is body
