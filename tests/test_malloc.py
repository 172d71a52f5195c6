"""glibc malloc tuning (dicomsvc/malloc.py): blob-sized buffers are reused, not mapped afresh each time."""

from __future__ import annotations

import asyncio
import importlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from dicomsvc.malloc import IdleRelease, malloc_tune

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.skipif(not (os.confstr("CS_GNU_LIBC_VERSION") or "").startswith("glibc"), reason="glibc only")

# What a study retrieve does on its worker threads: read ~0.5 MiB blobs with read(1 MiB).
WORKLOAD = """
import os, resource, tempfile, threading

def blob_read_faults(reads_per_thread=100, threads=4):
    fd, path = tempfile.mkstemp()
    os.write(fd, os.urandom(530_000)); os.close(fd)
    def work():
        for _ in range(reads_per_thread):
            with open(path, "rb") as fileobj:
                data = fileobj.read(1 << 20)
            del data
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    workers = [threading.Thread(target=work) for _ in range(threads)]
    for worker in workers: worker.start()
    for worker in workers: worker.join()
    os.unlink(path)
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
"""


def _run(code: str, env: dict[str, str] | None = None) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-c", WORKLOAD + code],
        cwd=ROOT, env={**os.environ, **(env or {})}, capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    return done.stdout.split()


def test_tuned_process_reuses_freed_buffers() -> None:
    (plain,) = _run("print(blob_read_faults())")
    tuned, applied = _run("from dicomsvc.malloc import malloc_tune\nok = malloc_tune()\nprint(blob_read_faults(), ok)")
    assert applied == "True"
    # 400 reads of 0.5 MiB: ~130 page faults each under the defaults, almost none once tuned.
    assert int(plain) > 20_000
    assert int(tuned) * 10 < int(plain)


def test_operator_malloc_tunables_are_left_alone() -> None:
    (applied,) = _run(
        "from dicomsvc.malloc import malloc_tune\nprint(malloc_tune())",
        env={"GLIBC_TUNABLES": "glibc.malloc.check=0"},
    )
    assert applied == "False"


@pytest.mark.django_db  # importing dicomsvc.asgi runs the partition start-up guard
def test_asgi_entry_point_tunes_the_server_process() -> None:
    importlib.import_module("dicomsvc.asgi")
    namespace: dict = {}
    exec(WORKLOAD, namespace)
    assert namespace["blob_read_faults"]() < 5_000
    assert malloc_tune() is True  # applying again is harmless


def test_release_hands_kept_buffers_back() -> None:
    before, kept, released = _run(
        "from dicomsvc.malloc import malloc_release, malloc_tune\n"
        "malloc_tune()\n"
        "def rss(): return int([l for l in open('/proc/self/status') if l.startswith('VmRSS')][0].split()[1])\n"
        "before = rss()\n"
        "def churn():\n"
        "    held = [bytearray(b'x' * (1 << 20)) for _ in range(12)]\n"
        "    held.append(held)  # a cycle: only the collector frees it\n"
        "    del held\n"
        "t = threading.Thread(target=churn); t.start(); t.join()\n"
        "kept = rss()\n"
        "malloc_release()\n"
        "print(before, kept, rss())"
    )
    # 12 MiB of cyclic garbage stays in the process until released (collected, then trimmed).
    assert int(kept) - int(before) > 8 * 1024
    assert int(released) - int(before) < 4 * 1024


def test_idle_release_waits_for_quiet() -> None:
    async def scenario() -> list[str]:
        calls: list[str] = []
        idle = IdleRelease(delay=0.05, release=lambda: calls.append("release"))
        idle.request_started()
        idle.request_started()
        idle.request_finished()
        await asyncio.sleep(0.1)
        calls.append("one still busy")
        idle.request_finished()
        idle.request_started()  # a new request within the delay cancels the pending release
        await asyncio.sleep(0.1)
        calls.append("busy again")
        idle.request_finished()
        await asyncio.sleep(0.1)
        return calls

    assert asyncio.run(scenario()) == ["one still busy", "busy again", "release"]


@pytest.mark.django_db  # importing dicomsvc.asgi runs the partition start-up guard
def test_api_requests_drive_the_idle_release(monkeypatch) -> None:
    from tests.helpers import asgi_get

    asgi = importlib.import_module("dicomsvc.asgi")
    calls: list[int] = []
    monkeypatch.setattr(asgi, "_idle", IdleRelease(delay=0.05, release=lambda: calls.append(1)))

    async def scenario() -> tuple[int, list[int]]:
        status, _body = await asgi_get("/health/check")
        during = list(calls)
        await asyncio.sleep(0.2)
        return status, during

    status, during = asyncio.run(scenario())
    assert status == 200
    assert during == [] and calls == [1]
