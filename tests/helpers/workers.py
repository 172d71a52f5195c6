"""Real Celery worker processes on the test database (the PostgreSQL/Redis run)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from django.conf import settings
from django.db import connection

# A killed worker's operation is taken over this long after its last heartbeat.
LEASE_SECONDS = 3


def wait(condition: Callable[[], bool], *, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


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
        wait(lambda: b" ready." in log.read_bytes() or process.poll() is not None, timeout=60, what="worker start")
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
