"""Real Celery worker processes on the test database, started as `make run` starts them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from django.conf import settings

from tests.helpers.live import ROOT, test_database_url


def wait_for(condition: Callable[[], bool], *, timeout: float, what: str) -> None:
    """Poll `condition` until true; fail naming `what` after `timeout` s (a hang guard, not a timing)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def _environment(data_dir: Path, env: dict[str, str]) -> dict[str, str]:
    """The test database and broker; blobs and the filesystem broker's folders under `data_dir`."""
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "dicomsvc.settings",
        "DATABASE_URL": test_database_url(),
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        "DICOM_DATA_DIR": str(data_dir),
        **env,
    }


def operations_resume_run(data_dir: Path) -> str:
    """`manage.py operations_resume` as an operator runs it, on the broker of `worker_start(data_dir)`.

    Tests create operations with the enqueue stubbed out (the test process's own filesystem
    broker is not the worker's) and hand them to the worker this way or by its start."""
    return subprocess.run(
        [sys.executable, "manage.py", "operations_resume"], cwd=ROOT, env=_environment(data_dir, {}),
        check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip


def worker_start(data_dir: Path, log: Path, **env: str) -> subprocess.Popen[bytes]:
    """`celery -A dicomsvc worker --concurrency=2` (make run's) in a process group of its own.

    A worker enqueues every unfinished operation when it starts (`worker_ready`)."""
    environment = _environment(data_dir, env)
    before = log.read_bytes().count(b" ready.") if log.exists() else 0
    process = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "dicomsvc", "worker", "--concurrency=2", "--loglevel=INFO",
         "-n", f"test{os.getpid()}-{time.monotonic_ns()}@%h"],
        cwd=ROOT, env=environment, stdout=log.open("ab"), stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    wait_for(
        lambda: log.read_bytes().count(b" ready.") > before or process.poll() is not None,
        timeout=60, what="the worker to start",
    )  # fmt: skip
    assert process.poll() is None, log.read_text()
    return process


def worker_children(process: subprocess.Popen[bytes]) -> list[int]:
    """The worker's child processes (its pool), whichever of its threads forked them."""
    pids: list[int] = []
    for task in Path(f"/proc/{process.pid}/task").glob("*"):
        try:
            pids += [int(pid) for pid in (task / "children").read_text().split()]
        except OSError:
            continue
    return pids


def worker_kill(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL the worker and everything in its process group."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait()
