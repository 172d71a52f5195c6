"""One server under drill: its own data dir, ports, database and broker; processes killed at will."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent
# The commands of `make run` (Makefile, dicomsvc/run_both.sh), with the drill's port and a
# worker name of its own (other workers may share a Redis server).
MALLOC_ENV = {"MALLOC_ARENA_MAX": "1", "MALLOC_MMAP_THRESHOLD_": "4194304", "MALLOC_TRIM_THRESHOLD_": "16777216"}


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """uvicorn and a Celery worker on one data dir; `database_url`/`broker_url` None: SQLite, filesystem broker."""

    def __init__(
        self, data_dir: Path, *, database_url: str | None, broker_url: str | None, env: dict[str, str] | None = None
    ) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            **MALLOC_ENV,
            "DJANGO_SETTINGS_MODULE": "dicomsvc.settings",
            "DICOM_DATA_DIR": str(data_dir),
            "PORT": str(self.port),
            "DICOM_EXPORT_FILESYSTEM_ROOTS": str(data_dir / "exports"),
            "PYTHONUNBUFFERED": "1",
            **(env or {}),
        }
        for key, value in (("DATABASE_URL", database_url), ("CELERY_BROKER_URL", broker_url)):
            if value:
                self.env[key] = value
            else:
                self.env.pop(key, None)
        self.web: subprocess.Popen[bytes] | None = None
        self.worker: subprocess.Popen[bytes] | None = None
        self.logs = data_dir / "logs"

    # --- processes ---------------------------------------------------------------------

    def manage(self, *args: str) -> str:
        out = subprocess.run(
            [sys.executable, "manage.py", *args], cwd=ROOT, env=self.env, check=True, capture_output=True, text=True
        )
        return out.stdout

    def _spawn(self, name: str, command: list[str]) -> subprocess.Popen[bytes]:
        self.logs.mkdir(parents=True, exist_ok=True)
        log = open(self.logs / f"{name}.log", "ab")  # noqa: SIM115 (the process holds it)
        # A process group of its own: the worker's pool children are killed with it at the end.
        return subprocess.Popen(command, cwd=ROOT, env=self.env, stdout=log, stderr=log, start_new_session=True)

    def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        (self.data_dir / "exports").mkdir(exist_ok=True)
        self.manage("migrate", "--noinput")
        self.start_worker()
        self.start_web()

    def start_web(self) -> None:
        self.web = self._spawn(
            "web",
            [str(VENV_BIN / "uvicorn"), "dicomsvc.asgi:application", "--host", "127.0.0.1", "--port", str(self.port),
             "--no-access-log"],
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{self.base}/health/check", timeout=2):
                    return
            except OSError:
                if self.web.poll() is not None:
                    break
                time.sleep(0.1)
        raise RuntimeError(f"web did not start; see {self.logs / 'web.log'}")

    def _ready_count(self) -> int:
        log = self.logs / "worker.log"
        return log.read_text(errors="replace").count(" ready.") if log.exists() else 0

    def start_worker(self) -> None:
        ready_before = self._ready_count()
        self.worker = self._spawn(
            "worker",
            [str(VENV_BIN / "celery"), "-A", "dicomsvc", "worker", "--loglevel=INFO", "--concurrency=2",
             "-n", f"drill{self.port}@%h"],
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self._ready_count() > ready_before:
                return
            if self.worker.poll() is not None:
                break
            time.sleep(0.2)
        raise RuntimeError(f"worker did not start; see {self.logs / 'worker.log'}")

    def pool_children(self) -> list[int]:
        if self.worker is None:
            return []
        # A child is listed under the thread that forked it: billiard's supervisor thread
        # forks the replacements of dead pool processes.
        pids: list[int] = []
        for task in Path(f"/proc/{self.worker.pid}/task").glob("*"):
            try:
                pids += [int(pid) for pid in (task / "children").read_text().split()]
            except OSError:
                continue
        return sorted(pids)

    def kill_web(self) -> None:
        assert self.web is not None
        self.web.kill()
        self.web.wait()

    def kill_pool_children(self) -> list[int]:
        """SIGKILL the worker's pool processes; the main worker process lives on and forks new ones."""
        children = self.pool_children()
        for pid in children:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        return children

    def kill_worker(self) -> None:
        """SIGKILL the worker's main process and its pool children."""
        assert self.worker is not None
        os.killpg(self.worker.pid, signal.SIGKILL)
        self.worker.wait()

    def worker_exit(self) -> str | None:
        """Why the worker is gone (its exit code and last log error), or None while it runs."""
        if self.worker is None or self.worker.poll() is None:
            return None
        log = self.logs / "worker.log"
        lines = log.read_text(errors="replace").splitlines() if log.exists() else []
        errors = [line for line in lines if "ERROR/" in line or "CRITICAL/" in line]
        return f"the worker exited with {self.worker.returncode}" + (
            f"; its last error: {errors[-1]}" if errors else ""
        )

    def stop(self) -> None:
        for process in (self.web, self.worker):
            if process is not None and process.poll() is None:
                process.terminate()
        for process in (self.web, self.worker):
            if process is None:
                continue
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
            try:
                os.killpg(process.pid, signal.SIGKILL)  # a stuck worker, leftover pool children
            except ProcessLookupError:
                pass
            process.wait()

    # --- state -------------------------------------------------------------------------

    def audit(self, *, cleanup: bool = False) -> dict[str, Any]:
        """Blobs against rows, feed against rows (drills.audit, run on this server's settings),
        after `manage.py dicom_cleanup` when `cleanup`."""
        command = [sys.executable, "-m", "drills.audit", *(["--cleanup"] if cleanup else [])]
        out = subprocess.run(command, cwd=ROOT, env=self.env, check=True, capture_output=True, text=True)
        return json.loads(out.stdout)
