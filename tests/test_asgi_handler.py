"""dicomsvc.asgi_handler: the one fork of Django's ASGI handler, pinned to the Django it was written for."""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import io
from typing import Any

import pytest
from django.core.exceptions import RequestAborted
from django.core.handlers.asgi import ASGIHandler

from dicomsvc.asgi_handler import ApiASGIHandler

# sha256 of `inspect.getsource` of each ASGIHandler method the fork overrides or calls, in Django 5.2.
# `handle` is forked (ours must keep its disconnect handling and what it sends and closes),
# `read_body`, `create_request` and `load_middleware` are overridden, `send_response` and
# `listen_for_disconnect` are called by the fork, `chunk_bytes` must still slice by `chunk_size`.
PINNED = {
    "handle": "98faeb5bef800331e6a8002fbc96b30e4122a23438ae45a047190a531ea11323",
    "read_body": "cf4aa904631d5410206f1a6b12ef0c74e99e4bd7313232c8e61f7a09a66a95e1",
    "create_request": "5eae59c6696013ffad47c3c05da5820dc7e17b2a3c8a09f59e12fd9bede5dc4f",
    "load_middleware": "a1fb7ee5f8586195da2174d1bbc2bbfc7ca19b9d26ea66412cb434f45bf6d467",
    "send_response": "77eda2b08689b44ee277c936092bde02e50f84727f7398480a127e7e9e1dad06",
    "listen_for_disconnect": "c729aa315c734f98cc8a6460d75adcae548e97549b6600388666fbbf6fcba2a9",
    "chunk_bytes": "6c045731cd77bd2da8253e0a55f1d1e8c9c6c78f412f73a4592d5df5dfb6a6ad",
}


@pytest.mark.parametrize("name", sorted(PINNED))
def test_the_django_methods_the_override_relies_on_are_unchanged(name):
    source = inspect.getsource(getattr(ASGIHandler, name))
    assert hashlib.sha256(source.encode()).hexdigest() == PINNED[name], (
        f"Django's ASGIHandler.{name} changed: re-check dicomsvc/asgi_handler.py against it (handle's "
        "signals, disconnect handling and closing, the body it reads, what create_request returns), "
        "then update PINNED here."
    )


def test_the_overridden_signatures_match_djangos():
    for name in ("handle", "read_body", "create_request", "load_middleware"):
        ours = inspect.signature(getattr(ApiASGIHandler, name)).parameters
        assert list(ours) == list(inspect.signature(getattr(ASGIHandler, name)).parameters)


def _receiver(messages: list[dict]):  # noqa: ANN202
    queue = list(messages)

    async def receive() -> dict:
        return queue.pop(0)

    return receive


def test_a_small_body_is_one_object_and_a_large_one_is_spooled(settings):
    settings.FILE_UPLOAD_MAX_MEMORY_SIZE = 1000
    handler = ApiASGIHandler.__new__(ApiASGIHandler)  # read_body needs no middleware
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
    handler = ApiASGIHandler.__new__(ApiASGIHandler)
    scope = {
        "type": "http", "method": "POST", "path": "/v2/studies", "query_string": b"", "root_path": "",
        "headers": [(b"content-length", b"3")],
    }  # fmt: skip
    body = io.BytesIO(b"abc")
    request, error = handler.create_request(scope, body)
    assert error is None and request.dicom_body is body


@pytest.fixture
def hops(monkeypatch):  # noqa: ANN001, ANN201
    """Every task submitted to a thread pool (`hops`), and how many there were whenever
    request_finished was sent (`finished`)."""
    from concurrent.futures import ThreadPoolExecutor

    from django.core import signals

    recorded: dict[str, list[Any]] = {"hops": [], "finished": []}
    submit = ThreadPoolExecutor.submit

    def counted(self, fn, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        recorded["hops"].append(repr(fn))
        return submit(self, fn, *args, **kwargs)

    def on_finished(**kwargs):  # noqa: ANN003, ANN202
        recorded["finished"].append(len(recorded["hops"]))

    monkeypatch.setattr(ThreadPoolExecutor, "submit", counted)
    signals.request_finished.connect(on_finished)
    yield recorded
    signals.request_finished.disconnect(on_finished)


@pytest.mark.django_db
def test_a_request_takes_one_thread_hop(settings, hops):  # noqa: ANN001
    """request_started, the middleware and view, and request_finished of a complete response are
    one task on a worker thread (Django's own handler submits four)."""
    from tests.helpers import asgi_get

    settings.DICOM_ENABLE_DATA_PARTITIONS = False
    status, body = asyncio.run(asgi_get("/v2/partitions"))
    assert status == 400, body  # the view ran: partitions are off
    assert len(hops["hops"]) == 1, hops
    assert hops["finished"] == [1]  # the response was closed inside that one hop


# serialized_rollback, as every transactional test that runs before the serialized ones
# (tests/test_auth_live.py says why).
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_streamed_response_is_closed_once_after_it_was_sent(hops):  # noqa: ANN001
    """A streamed response: the request's hop, the blob read and the close, and request_finished
    once, even though the client's disconnect (uvicorn sends it once the body is complete) may
    arrive before the close: it must not cancel the close and send request_finished again."""
    from tests.helpers import asgi_get, dicom_bytes, instance_url, store

    data = dicom_bytes()
    stored = store(data)[0]
    multipart = 'multipart/related; type="application/dicom"; transfer-syntax=*'
    for _ in range(5):  # the race, if any, shows within a few requests
        hops["hops"].clear()
        hops["finished"].clear()
        status, body = asyncio.run(asgi_get(instance_url(data), accept=multipart))
        assert status == 200 and len(body) > stored.file_size
        assert len(hops["hops"]) == 3, hops  # the request, the blob read, the close
        assert hops["finished"] == [3]  # once, by the close
