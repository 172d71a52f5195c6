"""`make run`'s supervisor (dicomsvc/run_both.sh): a stop always ends both commands and their children.

The Celery worker once hung after "Warm shutdown", ignoring further SIGTERMs, and `make run`
with it. The stand-ins here do the same on purpose: a "worker" that ignores SIGTERM and has a
pool child that ignores it too, and a "web" process that exits on SIGTERM."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
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


@pytest.fixture
def started(tmp_path: Path) -> Iterator[list[int]]:
    """Pids of what a test started; whatever is still alive at the end is SIGKILLed.

    The stand-ins run in process groups of their own (the script's job control) and ignore
    SIGTERM: a failing test would otherwise leave them running on the machine for good. Each
    one's command line names the test's tmp_path, so a pid reused meanwhile is left alone."""
    pids: list[int] = []
    yield pids
    for pid in pids:
        with contextlib.suppress(OSError):  # gone already
            if str(tmp_path).encode() in Path(f"/proc/{pid}/cmdline").read_bytes():
                os.kill(pid, signal.SIGKILL)


def _sigint_default() -> None:
    """SIGINT as a terminal's Ctrl-C finds `make run`: at its default. A test run started as a
    background job (`cmd &` in a script, as CI may) inherits SIGINT ignored, and a shell cannot
    trap a signal that was ignored when it started (POSIX), so the script would ignore it too."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _start(
    tmp_path: Path, started: list[int], web_seconds: float, *, grace: str | None = "1"
) -> tuple[subprocess.Popen, list[int]]:
    (tmp_path / "worker.py").write_text(STUBBORN)
    (tmp_path / "web.py").write_text(POLITE)
    worker = f"{sys.executable} {tmp_path / 'worker.py'} {tmp_path / 'worker.pids'}"
    web = f"{sys.executable} {tmp_path / 'web.py'} {tmp_path / 'web.pid'} {web_seconds}"
    env = {key: value for key, value in os.environ.items() if key != "RUN_STOP_GRACE_SECONDS"}
    if grace is not None:
        env["RUN_STOP_GRACE_SECONDS"] = grace
    process = subprocess.Popen(
        [str(SCRIPT), worker, web], env=env, start_new_session=True, preexec_fn=_sigint_default
    )  # fmt: skip
    started.append(process.pid)
    for _ in range(200):
        if (tmp_path / "worker.pids").exists() and (tmp_path / "web.pid").exists():
            break
        time.sleep(0.05)
    pids = [int(pid) for pid in (tmp_path / "worker.pids").read_text().split()]
    pids.append(int((tmp_path / "web.pid").read_text()))
    started.extend(pids)
    return process, pids


def _stop(process: subprocess.Popen, how: signal.Signals, timeout: float) -> float:
    """Send `how` to the script; the seconds until it exited (with status 0)."""
    sent = time.monotonic()
    process.send_signal(how)
    assert process.wait(timeout=timeout) == 0
    return time.monotonic() - sent


@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_stops_both_and_kills_what_ignores_sigterm(tmp_path, started, how):
    process, pids = _start(tmp_path, started, web_seconds=600)
    assert all(_alive(pid) for pid in pids)
    # RUN_STOP_GRACE_SECONDS=1: SIGTERM, then SIGKILL a second later.
    assert _stop(process, how, timeout=20) < 6
    assert [pid for pid in pids if _alive(pid)] == []


def test_make_run_stops_within_15_seconds_with_the_default_grace(tmp_path, started):
    # Issue #18: `make run` stops both processes within 15 s, whatever ignores SIGTERM.
    process, pids = _start(tmp_path, started, web_seconds=600, grace=None)
    assert _stop(process, signal.SIGTERM, timeout=30) < 15
    assert [pid for pid in pids if _alive(pid)] == []


def test_the_web_process_exiting_stops_the_worker(tmp_path, started):
    process, pids = _start(tmp_path, started, web_seconds=0.5)
    assert process.wait(timeout=20) == 0
    assert [pid for pid in pids if _alive(pid)] == []
