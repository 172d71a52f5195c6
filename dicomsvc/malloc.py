"""glibc malloc settings for the server processes (`malloc_tune`, called at start-up).

Why: serving a study reads each ~0.5 MiB blob into a new bytes object on a worker thread,
and a STOW body arrives in chunks of a few hundred KiB. Under glibc's defaults such a buffer
is mapped fresh from the kernel and handed back when freed (a thread's arena trims its top
past 128 KiB), so every one paid page faults and page zeroing: a quarter of a worker's CPU
while it served studies (perf: exc_page_fault, clear_page_erms, unmap_page_range). With
these settings freed buffers stay in the process and are reused: the worker's CPU per MB of
study retrieve fell from ~1.8 to ~1.0 ms (docs/benchmarks.md).

What stays mapped is bounded: buffers below MMAP_THRESHOLD come from one arena, which keeps
at most TRIM_THRESHOLD of free memory at its top while requests come in; anything larger (a
100 MB frame read, say) is still mapped and unmapped as before. Once a worker is idle,
`IdleRelease` hands what it kept back (`malloc_trim`). One arena, not glibc's eight per core:
Python threads allocate under the GIL, so more arenas only add retained memory, and
`malloc_trim` cannot shrink the top of a thread's arena, only the main one's.

Nothing is changed where the C library is not glibc, or where the operator set malloc
tunables (`GLIBC_TUNABLES`) themselves.
"""

from __future__ import annotations

import asyncio
import ctypes
import functools
import gc
import os
from collections.abc import Callable

# mallopt parameters, from glibc's malloc.h.
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8

MMAP_THRESHOLD = 4 * 1024 * 1024
TRIM_THRESHOLD = 16 * 1024 * 1024
ARENA_MAX = 1


@functools.cache
def _glibc() -> ctypes.CDLL | None:
    try:
        if not (os.confstr("CS_GNU_LIBC_VERSION") or "").startswith("glibc"):
            return None
    except (ValueError, OSError):
        return None
    try:
        return ctypes.CDLL(None)
    except OSError:
        return None


def malloc_tune() -> bool:
    """Apply the settings above; False where nothing was changed."""
    if "glibc.malloc." in os.environ.get("GLIBC_TUNABLES", ""):
        return False  # the operator's choice stands
    libc = _glibc()
    if libc is None:
        return False
    settings = ((M_ARENA_MAX, ARENA_MAX), (M_MMAP_THRESHOLD, MMAP_THRESHOLD), (M_TRIM_THRESHOLD, TRIM_THRESHOLD))
    return all(libc.mallopt(param, value) == 1 for param, value in settings)


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
    """Calls `release` once the process has served no request for `delay` seconds.

    The settings above keep freed buffers for reuse while requests come in; once they stop,
    a worker would keep that memory for good (idle workers stayed at 110-140 MiB after the
    bench's load instead of ~95). Runs on the event loop that serves the requests, so no locking.
    """

    def __init__(self, *, delay: float, release: Callable[[], None] = malloc_release) -> None:
        self._delay = delay
        self._release = release
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
            self._release()
