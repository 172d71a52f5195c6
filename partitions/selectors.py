"""Reads of partitions. Partitions are never renamed or deleted, so lookups are cached."""

from __future__ import annotations

import re

from django.db.models import QuerySet

from dicomsvc.errors import PartitionNameInvalid, PartitionNotFound
from partitions.models import PARTITION_NAME_PATTERN, Partition

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

