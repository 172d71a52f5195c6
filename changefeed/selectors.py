"""Reads of the change feed: v1 sequence pages, v2 time-window pages, the latest entry.

An entry's state is derived in SQL from the live instance with the same partition and
UIDs (status CREATED): none -> deleted; same watermark as the entry -> current; another
watermark -> replaced. Every page is therefore a fixed number of queries, whatever its size.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, TypedDict

from django.conf import settings
from django.db.models import Case, Exists, Expression, F, OuterRef, Q, QuerySet, Subquery, Value, When

from changefeed.models import ChangeFeedEntry, ChangeState
from studies.dicom.bulkdata import bulkdata_uris_resolve
from studies.models import Instance, InstanceStatus

if TYPE_CHECKING:
    from django_stubs_ext import WithAnnotations

    class EntryAnnotations(TypedDict):
        partition_name: str
        state: str
        live_instance_id: int | None

    AnnotatedEntry = WithAnnotations[ChangeFeedEntry, EntryAnnotations]

# Sequences are PostgreSQL bigints; an offset near the top must not overflow the bound.
MAX_SEQUENCE = 2**63 - 1


def _live_instance() -> QuerySet[Instance]:
    """The visible instance an entry's UIDs name now (at most one: the UIDs are unique per partition)."""
    return Instance.objects.filter(
        partition_id=OuterRef("partition_id"),
        study_instance_uid=OuterRef("study_instance_uid"),
        series_instance_uid=OuterRef("series_instance_uid"),
        sop_instance_uid=OuterRef("sop_instance_uid"),
        status=InstanceStatus.CREATED,
    )


def changefeed_queryset() -> QuerySet[AnnotatedEntry]:
    """Entries annotated with `partition_name`, `state` and `live_instance_id` (the visible
    instance the UIDs name now, or None: where metadata and admin links come from)."""
    return ChangeFeedEntry.objects.alias(
        current_watermark=Subquery(_live_instance().values("watermark")[:1]),
    ).annotate(
        partition_name=F("partition__partition_name"),
        state=Case(
            When(current_watermark__isnull=True, then=Value(ChangeState.DELETED.value)),
            When(current_watermark=F("watermark"), then=Value(ChangeState.CURRENT.value)),
            default=Value(ChangeState.REPLACED.value),
        ),
        live_instance_id=Subquery(_live_instance().values("pk")[:1]),
    )


def changefeed_state_q(*, state: ChangeState) -> Q | Expression:
    """A filter for entries in `state`, cheaper than filtering on the `state` annotation.

    Watermarks are never reused, so an entry is current exactly when its watermark is a
    visible instance's watermark: one hashed set for the whole scan instead of two index
    probes per row (the admin's state filter may walk far down a large feed).
    """
    live_watermarks = Instance.objects.filter(status=InstanceStatus.CREATED).values("watermark")
    if state == ChangeState.CURRENT:
        return Q(watermark__in=live_watermarks)
    if state == ChangeState.DELETED:
        return ~Exists(_live_instance())
    return Exists(_live_instance()) & ~Q(watermark__in=live_watermarks)


def changefeed_metadata_map(*, instance_ids: list[int], base_url: str) -> dict[int, str]:
    """DICOM JSON text of the current version of each named instance still visible.

    Fetched apart from the page so a response streams a few instances' metadata at a time:
    one enhanced multi-frame instance can carry megabytes of it. BulkDataURIs are made absolute
    under `base_url` (the version's root) and the instance's partition.
    """
    rows = Instance.objects.filter(pk__in=instance_ids, status=InstanceStatus.CREATED).values_list(
        "pk", "metadata", "partition__partition_name", "study_instance_uid", "series_instance_uid", "sop_instance_uid"
    )
    out = {}
    for pk, metadata, partition_name, study, series, sop in rows:
        root = f"{base_url}/partitions/{partition_name}" if settings.DICOM_ENABLE_DATA_PARTITIONS else base_url
        instance_url = f"{root}/studies/{study}/series/{series}/instances/{sop}"
        out[pk] = bulkdata_uris_resolve(metadata, instance_url=instance_url)
    return out


def changefeed_list(*, offset: int, limit: int) -> list[AnnotatedEntry]:
    """v1: entries with offset < sequence <= offset + limit, by sequence.

    `limit` bounds the sequence span, not the row count (as Microsoft's v1 does), so a page
    across rolled-back sequences may hold fewer rows; readers continue from offset + limit.
    """
    upper = min(offset + limit, MAX_SEQUENCE)
    return list(
        changefeed_queryset()
        .filter(sequence__gt=offset, sequence__lte=upper)
        .order_by("sequence")
    )


def changefeed_window_list(
    *,
    start: dt.datetime | None,
    end: dt.datetime | None,
    offset: int,
    limit: int,
) -> list[AnnotatedEntry]:
    """v2: entries with start <= timestamp < end, by (timestamp, sequence), skipping `offset` rows.

    The page's sequences are chosen first from the (timestamp, sequence) index alone, so a
    deep offset skips index entries instead of deriving the state of every skipped row.
    """
    window = ChangeFeedEntry.objects.all()
    if start is not None:
        window = window.filter(timestamp__gte=start)
    if end is not None:
        window = window.filter(timestamp__lt=end)
    page = window.order_by("timestamp", "sequence").values("sequence")[offset : offset + limit]
    return list(changefeed_queryset().filter(sequence__in=page).order_by("timestamp", "sequence"))


def changefeed_latest(*, by_timestamp: bool) -> AnnotatedEntry | None:
    """The newest entry: highest sequence (v1) or latest (timestamp, sequence) (v2)."""
    order = ("-timestamp", "-sequence") if by_timestamp else ("-sequence",)
    return changefeed_queryset().order_by(*order).first()
