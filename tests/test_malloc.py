"""glibc malloc for the server: set by environment everywhere the server starts; memory handed back when idle."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from dicomsvc.malloc import IdleRelease

ROOT = Path(__file__).resolve().parents[1]

glibc_only = pytest.mark.skipif(
    not (os.confstr("CS_GNU_LIBC_VERSION") or "").startswith("glibc"), reason="glibc only"
)

# glibc's documented environment variables, as the server is started with them.
MALLOC_ENV = {"MALLOC_ARENA_MAX": "1", "MALLOC_MMAP_THRESHOLD_": "4194304", "MALLOC_TRIM_THRESHOLD_": "16777216"}

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


def test_every_way_of_starting_the_server_sets_the_same_malloc_environment() -> None:
    makefile = dict(re.findall(r"^(MALLOC_[A-Z_]+) \?= (\S+)$", (ROOT / "Makefile").read_text(), re.M))
    assert makefile == MALLOC_ENV
    run_target = (ROOT / "Makefile").read_text().split("\nrun:")[1].split("\n\n")[0]
    assert "env $(MALLOC_ENV) $(VENV)/bin/uvicorn" in run_target
    dockerfile = (ROOT / "Dockerfile").read_text()
    (env_line,) = [line for line in dockerfile.splitlines() if line.startswith("ENV MALLOC_")]
    assert dict(pair.split("=") for pair in env_line.split()[1:]) == MALLOC_ENV
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    for service in ("web", "worker"):
        environment = compose["services"][service]["environment"]
        assert {key: environment[key] for key in MALLOC_ENV} == MALLOC_ENV
    bench = (ROOT / "bench/run_bench.sh").read_text()
    assert dict(re.findall(r"(MALLOC_[A-Z_]+)=\$\{\1:-(\d+)\}", bench)) == MALLOC_ENV
    example = dict(re.findall(r"^(MALLOC_[A-Z_]+)=(\S+)$", (ROOT / ".env.example").read_text(), re.M))
    assert example == MALLOC_ENV


@glibc_only
def test_the_malloc_environment_makes_a_process_reuse_freed_buffers() -> None:
    (plain,) = _run("print(blob_read_faults())", env={key: "" for key in MALLOC_ENV})
    (tuned,) = _run("print(blob_read_faults())", env=MALLOC_ENV)
    # 400 reads of 0.5 MiB: ~130 page faults each under the defaults, almost none once tuned.
    assert int(plain) > 20_000
    assert int(tuned) * 10 < int(plain)


@glibc_only
def test_release_hands_kept_buffers_back() -> None:
    before, kept, released = _run(
        "from dicomsvc.malloc import malloc_release\n"
        "def rss(): return int([l for l in open('/proc/self/status') if l.startswith('VmRSS')][0].split()[1])\n"
        "before = rss()\n"
        "def churn():\n"
        "    held = [bytearray(b'x' * (1 << 20)) for _ in range(12)]\n"
        "    held.append(held)  # a cycle: only the collector frees it\n"
        "    del held\n"
        "t = threading.Thread(target=churn); t.start(); t.join()\n"
        "kept = rss()\n"
        "malloc_release()\n"
        "print(before, kept, rss())",
        env=MALLOC_ENV,
    )
    # 12 MiB of cyclic garbage stays in the process until released (collected, then trimmed).
    assert int(kept) - int(before) > 8 * 1024
    assert int(released) - int(before) < 4 * 1024


def test_idle_release_waits_for_quiet(full_collections: list[str]) -> None:
    async def scenario() -> list[str]:
        calls = full_collections  # gets "release" when the release runs
        idle = IdleRelease(delay=0.05)
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
