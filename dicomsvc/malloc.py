"""Handing memory back to the kernel once a server process is idle.

glibc's malloc is set for the server processes through its documented environment variables
(`MALLOC_ARENA_MAX=1`, `MALLOC_MMAP_THRESHOLD_=4194304`, `MALLOC_TRIM_THRESHOLD_=16777216`:
the Makefile, the Dockerfile, docker-compose.yml and bench/run_bench.sh set them). Serving a
study reads each blob into a new bytes object, and a STOW body arrives in chunks of a
few hundred KiB; under glibc's defaults each such buffer is mapped fresh from the kernel and
handed back when freed, paying page faults and page zeroing every time. With those settings
freed buffers below 4 MiB stay in the process for reuse, at most 16 MiB of free memory at the
top of one arena (Python threads allocate under the GIL, so more arenas only keep more).

What the environment cannot do is hand that memory back once requests stop: `IdleRelease`
calls `malloc_release` after a few seconds without requests. Where the C library is not glibc
only the garbage collection runs.
"""

from __future__ import annotations

import asyncio
import ctypes
import functools
import gc
import os


@functools.cache
def _glibc() -> ctypes.CDLL | None:
    """The C library when it is glibc (looked up on first use), else None."""
    try:
        if not (os.confstr("CS_GNU_LIBC_VERSION") or "").startswith("glibc"):
            return None
    except (ValueError, OSError):
        return None
    try:
        return ctypes.CDLL(None)
    except OSError:
        return None


def malloc_release() -> None:
    """Free what only cyclic garbage still holds, then hand free memory back (glibc's malloc_trim).

    The collection matters: a finished request's objects that sit in reference cycles keep
    their body or blob buffers until the collector runs, and an idle process allocates
    nothing that would make it run.
    """
    gc.collect()
    libc = _glibc()
    if libc is not None:
        libc.malloc_trim(0)


class IdleRelease:
    """Calls `malloc_release` once the process has served no request for `delay` seconds.

    The malloc settings keep freed buffers for reuse while requests come in; once they stop,
    a worker would keep that memory for good. Runs on the event loop that serves the
    requests, so no locking.
    """

    def __init__(self, *, delay: float) -> None:
        self._delay = delay
        self._busy = 0
        self._timer: asyncio.TimerHandle | None = None

    def request_started(self) -> None:
        self._busy += 1
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def request_finished(self) -> None:
        self._busy -= 1
        if self._busy == 0:
            self._timer = asyncio.get_running_loop().call_later(self._delay, self._fire)

    def _fire(self) -> None:
        self._timer = None
        if self._busy == 0:
            malloc_release()
