"""The ASGI entry point: Django's handler, the lifespan start-up guard, the idle release."""

from __future__ import annotations

import asyncio
import gc
import importlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from dicomsvc.malloc import IdleRelease
from tests.helpers import asgi_get

ROOT = Path(__file__).resolve().parents[1]




async def _lifespan() -> list[dict]:
    incoming = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]
    sent: list[dict] = []

    async def receive() -> dict:
        return incoming.pop(0)

    async def send(message: dict) -> None:
        sent.append(message)

    await importlib.import_module("dicomsvc.asgi").application({"type": "lifespan"}, receive, send)
    return sent


@pytest.mark.django_db
def test_api_requests_are_served(settings):
    settings.DICOM_ENABLE_DATA_PARTITIONS = False  # /v2/partitions answers 400 without the database

    async def scenario() -> list[tuple[int, bytes]]:
        return [await asgi_get("/v2/partitions"), *await asyncio.gather(*(asgi_get("/v2/partitions") for _ in range(3)))]

    results = asyncio.run(scenario())
    assert all(status == 400 for status, _ in results)
    assert all(b"Data partitions feature is disabled." in body for _, body in results)


def test_importing_the_entry_point_only_builds_the_application(tmp_path):
    """No database query and no garbage-collector settings at import (both wait for the lifespan start-up)."""
    env = {**os.environ, "DICOM_DATA_DIR": str(tmp_path), "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}"}
    done = subprocess.run(
        [sys.executable, "-c", "import gc, dicomsvc.asgi; print(gc.get_freeze_count())"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    assert done.stdout.split() == ["0"]
    assert not (tmp_path / "db.sqlite3").exists()  # nothing connected to the database


def test_lifespan_start_up_fails_when_the_partition_guard_fails(monkeypatch):
    # The guard itself: tests/test_partitions.py; a real server refusing to start: tests/test_live_server.py.
    from dicomsvc.errors import DataPartitionsFeatureCannotBeDisabledException

    def guard() -> None:
        raise DataPartitionsFeatureCannotBeDisabledException()

    monkeypatch.setattr("partitions.checks.partitions_guard", guard)
    (failed,) = asyncio.run(_lifespan())
    assert failed["type"] == "lifespan.startup.failed"
    assert "cannot be disabled" in failed["message"]


def test_lifespan_start_up_runs_the_guard_and_settles_the_garbage_collector(monkeypatch):
    ran: list[str] = []
    monkeypatch.setattr("partitions.checks.partitions_guard", lambda: ran.append("guard"))
    try:
        assert asyncio.run(_lifespan()) == [{"type": "lifespan.startup.complete"}, {"type": "lifespan.shutdown.complete"}]
        assert ran == ["guard"]
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()


@pytest.mark.django_db
def test_api_requests_drive_the_idle_release(monkeypatch, full_collections) -> None:
    application = importlib.import_module("dicomsvc.asgi").application
    calls = full_collections  # gets "release" when the release runs
    monkeypatch.setattr(application, "idle", IdleRelease(delay=0.05))

    async def scenario() -> tuple[int, list[int]]:
        status, _body = await asgi_get("/health/check")
        during = list(calls)
        await asyncio.sleep(0.2)
        return status, during

    status, during = asyncio.run(scenario())
    assert status == 200
    assert during == [] and calls == ["release"]


@pytest.mark.django_db
def test_requests_borrow_pooled_threads(settings):
    settings.DICOM_ENABLE_DATA_PARTITIONS = False
    pool = importlib.import_module("dicomsvc.asgi").application.executors
    pool._idle.clear()

    async def scenario() -> None:
        await asgi_get("/v2/partitions")
        await asgi_get("/v2/partitions")
        await asyncio.gather(*(asgi_get("/v2/partitions") for _ in range(3)))

    asyncio.run(scenario())
    # Two requests in a row used one executor; three at once needed three, kept for later.
    assert len(pool._idle) == 3
    assert all(executor._max_workers == 1 for executor in pool._idle)


@pytest.mark.django_db
def test_a_requests_synchronous_code_runs_on_the_borrowed_thread(settings, monkeypatch):
    import threading

    from django.core import signals

    from dicomsvc.asgi import ExecutorPool

    settings.DICOM_ENABLE_DATA_PARTITIONS = False
    application = importlib.import_module("dicomsvc.asgi").application
    pool = ExecutorPool()
    monkeypatch.setattr(application, "executors", pool)
    lent = pool.acquire()
    pool.release(lent)
    (lent_thread,) = [lent.submit(threading.get_ident).result()]
    threads: list[int] = []

    def started(**kwargs):  # noqa: ANN003
        threads.append(threading.get_ident())

    signals.request_started.connect(started)
    try:
        status, _body = asyncio.run(asgi_get("/v2/partitions"))
    finally:
        signals.request_started.disconnect(started)
    assert status == 400
    assert threads == [lent_thread]


def test_the_pool_keeps_a_bounded_number_of_idle_threads():
    from dicomsvc.asgi import ExecutorPool

    pool = ExecutorPool()
    bound = ExecutorPool.MAX_IDLE
    executors = [pool.acquire() for _ in range(bound + 1)]  # no thread starts before a submit
    assert len({id(e) for e in executors}) == bound + 1
    for executor in executors:
        pool.release(executor)
    assert pool._idle == executors[:bound]
    assert executors[bound]._shutdown and not executors[0]._shutdown
    assert pool.acquire() is executors[bound - 1]  # the most recently returned is lent first
