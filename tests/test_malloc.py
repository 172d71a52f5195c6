"""glibc malloc tuning (dicomsvc/malloc.py): blob-sized buffers are reused, not mapped afresh each time."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from dicomsvc.malloc import malloc_tune

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
