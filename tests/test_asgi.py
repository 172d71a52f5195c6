"""The ASGI entry point: API requests borrow pooled request threads instead of starting one each."""

from __future__ import annotations

import asyncio
import importlib
import threading

import pytest

from tests.helpers import asgi_get


@pytest.mark.django_db  # importing dicomsvc.asgi runs the partition start-up guard
def test_requests_reuse_pooled_threads(settings):
    settings.DICOM_ENABLE_DATA_PARTITIONS = False  # /v2/partitions answers 400 without the database
    pool = importlib.import_module("dicomsvc.asgi")._executors
    pool._idle.clear()

    async def scenario() -> list[tuple[int, bytes]]:
        first = await asgi_get("/v2/partitions")
        second = await asgi_get("/v2/partitions")
        return [first, second, *await asyncio.gather(*(asgi_get("/v2/partitions") for _ in range(3)))]

    results = asyncio.run(scenario())
    assert all(status == 400 for status, _ in results)
    assert results[0][1] == results[-1][1]
    assert b"Data partitions feature is disabled." in results[0][1]
    # Two requests in a row used one executor; three at once needed three, kept for later.
    assert len(pool._idle) == 3
    assert all(executor._max_workers == 1 for executor in pool._idle)


@pytest.mark.django_db
def test_the_pool_keeps_a_bounded_number_of_idle_threads():
    pool = importlib.import_module("dicomsvc.asgi")._ExecutorPool(max_idle=2)
    executors = [pool.acquire() for _ in range(3)]
    assert len({id(e) for e in executors}) == 3
    for executor in executors:
        pool.release(executor)
    assert pool._idle == executors[:2]
    assert executors[2]._shutdown and not executors[0]._shutdown
    assert pool.acquire() is executors[1]  # the most recently returned is lent first


@pytest.mark.django_db
def test_a_request_takes_one_thread_hop_and_finishes_in_it(settings, monkeypatch):
    from concurrent.futures import ThreadPoolExecutor

    from django.core import signals

    settings.DICOM_ENABLE_DATA_PARTITIONS = False
    module = importlib.import_module("dicomsvc.asgi")
    submitted: list[str] = []

    class CountingExecutor(ThreadPoolExecutor):
        def submit(self, fn, /, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003
            submitted.append(getattr(fn, "__qualname__", repr(fn)))
            return super().submit(fn, *args, **kwargs)

    monkeypatch.setattr(module._ExecutorPool, "acquire", lambda self: CountingExecutor(max_workers=1))
    threads: dict[str, int] = {}

    def started(**kwargs):  # noqa: ANN003
        threads["started"] = threading.get_ident()

    def finished(**kwargs):  # noqa: ANN003
        threads["finished"] = threading.get_ident()

    signals.request_started.connect(started)
    signals.request_finished.connect(finished)
    try:
        status, body = asyncio.run(asgi_get("/v2/partitions"))
    finally:
        signals.request_started.disconnect(started)
        signals.request_finished.disconnect(finished)
    assert (status, b"Data partitions feature is disabled." in body) == (400, True)
    # request_started, the view and request_finished all ran in one hop to one worker thread.
    assert len(submitted) == 1, submitted
    assert threads["started"] == threads["finished"] != threading.get_ident()


@pytest.mark.django_db  # importing dicomsvc.asgi runs the partition start-up guard
def test_long_lived_objects_are_kept_out_of_the_garbage_collector():
    import gc

    importlib.import_module("dicomsvc.asgi")
    assert gc.get_freeze_count() > 100_000
