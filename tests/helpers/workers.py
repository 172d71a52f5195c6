"""Real Celery worker processes on the test database: as `make run` starts them (`worker_start`), or
solo workers with a short lease for the PostgreSQL/Redis run (`Workers`)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from django.conf import settings
from django.db import connection

from tests.helpers.live import ROOT, test_database_url

# A killed worker's operation is taken over this long after its last heartbeat.
LEASE_SECONDS = 3


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


class Workers:
    """Starts worker processes against the test database; stops them all at teardown."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.processes: list[tuple[subprocess.Popen[bytes], Path]] = []

    def start(self, *, delay_ms: int = 0, parallel_files: int = 4, **env: str) -> tuple[subprocess.Popen[bytes], Path]:
        db = connection.settings_dict
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "dicomsvc.settings",
            "DATABASE_URL": f"postgres://{db['USER']}:{db['PASSWORD']}@{db['HOST']}:{db['PORT'] or 5432}/{db['NAME']}",
            "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
            "DICOM_DATA_DIR": str(self.data_dir),
            "DICOM_PUBLIC_BASE_URL": settings.DICOM_PUBLIC_BASE_URL,
            "DICOM_OPERATION_LEASE_SECONDS": str(LEASE_SECONDS),
            "DICOM_UPDATE_INSTANCE_DELAY_MS": str(delay_ms),
            "DICOM_UPDATE_PARALLEL_FILES": str(parallel_files),
            **env,
        }
        log = self.data_dir / f"worker-{len(self.processes)}.log"
        process = subprocess.Popen(
            [
                sys.executable, "-m", "celery", "-A", "dicomsvc", "worker", "--pool=solo", "--loglevel=INFO",
                "--without-gossip", "--without-mingle", "--without-heartbeat", "-n", f"test{len(self.processes)}@%h",
            ],
            cwd=settings.BASE_DIR,
            env=env,
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
        )
        self.processes.append((process, log))
        wait_for(lambda: b" ready." in log.read_bytes() or process.poll() is not None, timeout=60, what="worker start")
        assert process.poll() is None, log.read_text()
        return process, log

    def stop_all(self) -> None:
        for process, _log in self.processes:
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
