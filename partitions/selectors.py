"""Reads of partitions. Partitions are never renamed or deleted, so lookups are cached."""

from __future__ import annotations

import re

from django.db.models import Count, F, OuterRef, QuerySet, Subquery, Sum, Value
from django.db.models.functions import Coalesce

from dicomsvc.errors import PartitionNameInvalid, PartitionNotFound
from partitions.models import PARTITION_NAME_PATTERN, Partition
from studies.models import Instance, InstanceStatus, Study

_NAME_RE = re.compile(PARTITION_NAME_PATTERN)
_cache: dict[str, Partition] = {}


def partition_name_validate(*, name: str) -> str:
    if not _NAME_RE.fullmatch(name):
        raise PartitionNameInvalid(name)
    return name


def partition_get(*, name: str) -> Partition:
    partition_name_validate(name=name)
    cached = _cache.get(name)
    if cached is not None:
        return cached
    try:
        partition = Partition.objects.get(partition_name=name)
    except Partition.DoesNotExist:
        raise PartitionNotFound(name) from None
    _cache[name] = partition
    return partition


def partition_list() -> QuerySet[Partition]:
    return Partition.objects.order_by("partition_key")


def partition_cache_clear() -> None:
    _cache.clear()


def partition_list_with_stats() -> QuerySet[Partition]:
    """Partitions annotated with `num_studies`, `num_instances` and `stored_bytes`, in one query.

    Study and instance counts come from the counters the store and delete services keep on
    each study (one row per study, not per instance); `stored_bytes` sums the visible
    instances' files, original versions kept by a bulk update included.
    """
    studies = Study.objects.filter(partition=OuterRef("pk"), num_instances__gt=0).values("partition")
    instances = Instance.objects.filter(partition=OuterRef("pk"), status=InstanceStatus.CREATED).values("partition")
    zero = Value(0)
    return Partition.objects.annotate(
        num_studies=Coalesce(Subquery(studies.annotate(n=Count("pk")).values("n")), zero),
        num_instances=Coalesce(Subquery(studies.annotate(n=Sum("num_instances")).values("n")), zero),
        stored_bytes=Coalesce(
            Subquery(
                instances.annotate(n=Sum(F("file_size") + Coalesce("original_file_size", zero))).values("n")
            ),
            zero,
        ),
    ).order_by("partition_key")
