"""The studies side of a reindex: index the instances stored before a tag was added.

The operation (`operations.reindex`) calls `reindex_batch` in its own transaction, which
also locks the operation row and advances its checkpoint: a batch is committed with the
checkpoint that says it is done, or not at all, so a resumed run indexes every instance
exactly once. Writing a value twice would change nothing anyway (`studies.eqt.index`).

Batches are keyset pages of the instance table by watermark (its unique index): no offset
scans, no table locks. The page's rows are locked against deletion (`FOR NO KEY UPDATE`)
for the batch's short transaction, so no value is written for an instance being deleted.
Their studies are locked first, in id order, as every writer of a study's rows does (store
commit, delete, bulk update): a batch holding instance rows while its values' foreign keys
waited at COMMIT for a study a DELETE held would deadlock with that delete.
A row still being stored (`creating`) when its page is read is remembered and indexed once
its store commits: that store may have read a tag list older than the tag.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from django.conf import settings
from django.db.models import Count, OuterRef, Subquery
from django.utils import timezone

from dicomsvc.sqlbatch import statements_run
from studies.dicom.dicomjson import json_loads_fast
from studies.eqt.index import Owner, extended_read, values_upsert_statements
from studies.eqt.models import ExtendedQueryTag, ExtendedQueryTagError, QueryStatus, TagStatus
from studies.eqt.services import tags_changed
from studies.eqt.tags import TagDef, tag_def
from studies.eqt.values import IndexValue
from studies.models import Instance, InstanceStatus, Study
from studies.search.results import projection_keys, search_projection


@dataclass
class BatchResult:
    """What one batch did: the last watermark and the rows it read (deleted ones too), instances
    indexed, rows still being stored."""

    last: int
    read: int = 0
    indexed: int = 0
    creating: list[int] = field(default_factory=list)
    errors: int = 0


def reindex_tags(*, keys: Sequence[int]) -> tuple[TagDef, ...]:
    """The tags of a reindex that are still being added."""
    rows = ExtendedQueryTag.objects.filter(pk__in=keys, status=TagStatus.ADDING).order_by("pk")
    return tuple(tag_def(row) for row in rows)


def reindex_total() -> int:
    """Instances a reindex has to read (its progress is the share done)."""
    return Instance.objects.filter(status=InstanceStatus.CREATED).count()


class _Row(NamedTuple):
    pk: int
    partition_id: int
    study_id: int
    series_id: int
    watermark: int
    metadata: str
    search_metadata: str
    status: int
    created_at: dt.datetime


def _index(tags: tuple[TagDef, ...], rows: list[_Row]) -> int:
    """Index `rows`, and add the tags' attributes to their search projections; returns the errors recorded."""
    values: list[tuple[Owner, TagDef, IndexValue]] = []
    errors: list[ExtendedQueryTagError] = []
    projections: list[Instance] = []
    keys = projection_keys(extra=tags)
    for row in rows:
        metadata = json_loads_fast(row.metadata) if row.metadata else {}
        read = extended_read(metadata=metadata, tags=tags)
        owner = Owner(row.partition_id, row.study_id, row.series_id, row.pk, row.watermark)
        values += [(owner, tag, value) for tag, value in read.values]
        errors += [
            ExtendedQueryTagError(tag_id=tag.key, instance_id=row.pk, message=reason[:512])
            for tag, reason in read.errors
        ]
        # A row without a projection (stored before it existed) is searched by its metadata.
        projection = search_projection(metadata, keys=keys) if row.search_metadata else ""
        if projection != row.search_metadata:
            projections.append(Instance(pk=row.pk, search_metadata=projection))
    statements = values_upsert_statements(values)
    if statements:
        statements_run(statements)
    if projections:
        Instance.objects.bulk_update(projections, ["search_metadata"])
    if errors:
        ExtendedQueryTagError.objects.bulk_create(errors, ignore_conflicts=True)
        failed = {error.tag_id for error in errors}
        count = (
            ExtendedQueryTagError.objects.filter(tag=OuterRef("pk")).values("tag").annotate(n=Count("pk")).values("n")
        )
        # An unindexable value disables searching on the tag until a user enables it again.
        ExtendedQueryTag.objects.filter(pk__in=failed).update(
            error_count=Subquery(count), query_status=QueryStatus.DISABLED
        )
        tags_changed()
    return len(errors)


def _locked(watermarks: list[int]) -> list[_Row]:
    """The rows of `watermarks` still there, in watermark order: their studies locked, then the rows."""
    studies = Instance.objects.filter(watermark__in=watermarks).values("study_id")
    list(Study.objects.select_for_update(no_key=True).filter(pk__in=studies).order_by("pk").values_list("pk"))
    rows = (
        Instance.objects.select_for_update(no_key=True)
        .filter(watermark__in=watermarks)
        .order_by("watermark")
        .values_list(*_Row._fields)
    )
    return [_Row(*row) for row in rows]


def reindex_bounds() -> tuple[int, int]:
    """The lowest and highest watermark stored (0, 0 when there is none)."""
    first = Instance.objects.order_by("watermark").values_list("watermark", flat=True).first()
    last = Instance.objects.order_by("-watermark").values_list("watermark", flat=True).first()
    return first or 0, last or 0


def reindex_batch(*, tags: tuple[TagDef, ...], after: int, limit: int, end: int | None = None) -> BatchResult:
    """Inside the caller's transaction: index the next `limit` instances after watermark `after`
    (up to watermark `end`, if given)."""
    page = list(
        Instance.objects.filter(watermark__gt=after, **({} if end is None else {"watermark__lte": end}))
        .order_by("watermark")
        .values_list("watermark", flat=True)[:limit]
    )
    rows = _locked(page)
    result = BatchResult(last=page[-1] if page else after, read=len(page))
    created = [row for row in rows if row.status == InstanceStatus.CREATED]
    result.creating = [row.watermark for row in rows if row.status != InstanceStatus.CREATED]
    result.errors = _index(tags, created)
    result.indexed = len(created)
    return result


def reindex_pending(*, tags: tuple[TagDef, ...], watermarks: list[int]) -> list[int]:
    """Inside the caller's transaction: index the rows of `watermarks` whose store has committed
    since; returns those still being stored (a crashed store's row counts only until it is stale)."""
    if not watermarks:
        return []
    rows = _locked(watermarks)
    stale_before = timezone.now() - dt.timedelta(seconds=settings.DICOM_STALE_CREATING_SECONDS)
    _index(tags, [row for row in rows if row.status == InstanceStatus.CREATED])
    return sorted(
        row.watermark for row in rows if row.status != InstanceStatus.CREATED and row.created_at >= stale_before
    )


def reindex_settled_at(*, tags: tuple[TagDef, ...]) -> dt.datetime:
    """When every process's tag list holds the tags (`studies.eqt.tags`): the reindex ends no sooner.

    Twice the cache lifetime after the newest tag was added, for clock differences between hosts.
    """
    created = ExtendedQueryTag.objects.filter(pk__in=[tag.key for tag in tags]).order_by("-created_time")
    newest = created.values_list("created_time", flat=True).first() or timezone.now()
    return newest + dt.timedelta(milliseconds=2 * settings.DICOM_EXTENDED_QUERY_TAG_CACHE_MS)


def reindex_finish(*, tags: tuple[TagDef, ...]) -> None:
    """Inside the caller's transaction: the tags are ready (compare-and-swap from adding)."""
    ExtendedQueryTag.objects.filter(pk__in=[tag.key for tag in tags], status=TagStatus.ADDING).update(
        status=TagStatus.READY
    )
    tags_changed()
