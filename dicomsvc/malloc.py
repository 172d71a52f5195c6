"""glibc malloc settings for the server processes (`malloc_tune`, called at start-up).

Why: serving a study reads each ~0.5 MiB blob into a new bytes object on a worker thread,
and a STOW body arrives in chunks of a few hundred KiB. Under glibc's defaults such a buffer
is mapped fresh from the kernel and handed back when freed (a thread's arena trims its top
past 128 KiB), so every one paid page faults and page zeroing: a quarter of a worker's CPU
while it served studies (perf: exc_page_fault, clear_page_erms, unmap_page_range). With
these settings freed buffers stay in the process and are reused: the worker's CPU per MB of
study retrieve fell from ~1.55 to ~0.95 ms (docs/benchmarks.md).

What stays mapped is bounded: buffers below MMAP_THRESHOLD come from at most ARENA_MAX
arenas, each keeping at most TRIM_THRESHOLD of free memory at its top; anything larger
(a 100 MB frame read, say) is still mapped and unmapped as before. Two arenas, not glibc's
eight per core: Python threads allocate under the GIL, so more arenas only add retained memory.

Nothing is changed where the C library is not glibc, or where the operator set malloc
tunables (`GLIBC_TUNABLES`) themselves.
"""

from __future__ import annotations

import ctypes
import os

# mallopt parameters, from glibc's malloc.h.
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8

MMAP_THRESHOLD = 4 * 1024 * 1024
TRIM_THRESHOLD = 16 * 1024 * 1024
ARENA_MAX = 2


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
