"""Extended query tag definitions as the store and QIDO use them, from a per-process cache.

Why a cache: every STOW and every QIDO request needs the tag list, and with no tags defined
the store must not pay a statement for learning that. Each process reloads the list when it
is older than `DICOM_EXTENDED_QUERY_TAG_CACHE_MS`; a process that changes tags reloads at
once. Another process may thus store instances without a just-added tag for that long: the
reindex of a new tag does not finish before that time has passed since the tag was added,
and indexes such instances itself (`studies.eqt.reindex`).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from django.conf import settings
from pydicom.datadict import keyword_for_tag

from studies.eqt.models import ExtendedQueryTag, QueryStatus, TagLevel, TagStatus


@dataclass(frozen=True)
class TagDef:
    """One extended query tag, as read from its row."""

    key: int  # the row's primary key
    tag: int
    path: str
    vr: str
    private_creator: str
    level: TagLevel
    status: TagStatus
    query_status: QueryStatus
    error_count: int

    @property
    def label(self) -> str:
        """How messages name the tag: its keyword, or its path for a private or unknown tag."""
        return (keyword_for_tag(self.tag) if not self.private_creator else "") or self.path

    @property
    def searchable(self) -> bool:
        return self.status == TagStatus.READY and self.query_status == QueryStatus.ENABLED


def tag_def(row: ExtendedQueryTag) -> TagDef:
    return TagDef(
        key=row.pk,
        tag=int(row.path, 16),
        path=row.path,
        vr=row.vr,
        private_creator=row.private_creator,
        level=TagLevel(row.level),
        status=TagStatus(row.status),
        query_status=QueryStatus(row.query_status),
        error_count=row.error_count,
    )


_lock = threading.Lock()
_cached: tuple[float, tuple[TagDef, ...]] | None = None


def tags_cached() -> tuple[TagDef, ...]:
    """Tags being added or ready (not those being deleted), at most the cache lifetime old."""
    global _cached
    entry = _cached
    lifetime = settings.DICOM_EXTENDED_QUERY_TAG_CACHE_MS / 1000
    if entry is not None and time.monotonic() - entry[0] < lifetime:
        return entry[1]
    with _lock:
        loaded_at = time.monotonic()
        rows = ExtendedQueryTag.objects.exclude(status=TagStatus.DELETING).order_by("pk")
        tags = tuple(tag_def(row) for row in rows)
        _cached = (loaded_at, tags)
    return tags


def tags_cache_clear() -> None:
    """Forget the cached list: the next use reloads it (after this process changed a tag)."""
    global _cached
    _cached = None
