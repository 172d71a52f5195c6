"""`make run`'s supervisor (dicomsvc/run_both.sh): a stop always ends both commands and their children.

The Celery worker once hung after "Warm shutdown", ignoring further SIGTERMs, and `make run`
with it. The stand-ins here do the same on purpose: a "worker" that ignores SIGTERM and has a
pool child that ignores it too, and a "web" process that exits on SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers import ROOT

SCRIPT = ROOT / "dicomsvc" / "run_both.sh"

STUBBORN = """
import os, signal, sys, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
child = os.fork()
if child == 0:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    while True:
        time.sleep(1)
with open(sys.argv[1], "w") as f:
    f.write(f"{os.getpid()} {child}")
while True:
    time.sleep(1)
"""
POLITE = """
import os, sys, time
with open(sys.argv[1], "w") as f:
    f.write(str(os.getpid()))
time.sleep(float(sys.argv[2]))
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is gone for our purposes: only its parent's wait is missing.
    return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"


def _start(tmp_path: Path, web_seconds: float) -> tuple[subprocess.Popen, list[int]]:
    (tmp_path / "worker.py").write_text(STUBBORN)
    (tmp_path / "web.py").write_text(POLITE)
    worker = f"{sys.executable} {tmp_path / 'worker.py'} {tmp_path / 'worker.pids'}"
    web = f"{sys.executable} {tmp_path / 'web.py'} {tmp_path / 'web.pid'} {web_seconds}"
    process = subprocess.Popen(
        [str(SCRIPT), worker, web], env={**os.environ, "RUN_STOP_GRACE_SECONDS": "1"}, start_new_session=True
    )
    for _ in range(200):
        if (tmp_path / "worker.pids").exists() and (tmp_path / "web.pid").exists():
            break
        time.sleep(0.05)
    pids = [int(pid) for pid in (tmp_path / "worker.pids").read_text().split()]
    pids.append(int((tmp_path / "web.pid").read_text()))
    return process, pids


@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_stops_both_and_kills_what_ignores_sigterm(tmp_path, how):
    process, pids = _start(tmp_path, web_seconds=600)
    assert all(_alive(pid) for pid in pids)
    process.send_signal(how)
    try:
        assert process.wait(timeout=20) == 0
    finally:
        os.killpg(process.pid, signal.SIGKILL) if process.poll() is None else None
    assert [pid for pid in pids if _alive(pid)] == []


def test_the_web_process_exiting_stops_the_worker(tmp_path):
    process, pids = _start(tmp_path, web_seconds=0.5)
    assert process.wait(timeout=20) == 0
    assert [pid for pid in pids if _alive(pid)] == []
