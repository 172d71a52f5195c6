"""Reads of partitions. Partitions are never renamed or deleted, so lookups are cached."""

from __future__ import annotations

import functools
import re

from django.db.models import QuerySet

from dicomsvc.errors import PartitionNameInvalid, PartitionNotFound
from partitions.models import PARTITION_NAME_PATTERN, Partition

_NAME_RE = re.compile(PARTITION_NAME_PATTERN)


def partition_name_validate(*, name: str) -> str:
    if not _NAME_RE.fullmatch(name):
        raise PartitionNameInvalid(name)
    return name


@functools.cache  # a lookup that raises (invalid name, not found) is not cached
def partition_get(*, name: str) -> Partition:
    partition_name_validate(name=name)
    try:
        return Partition.objects.get(partition_name=name)
    except Partition.DoesNotExist:
        raise PartitionNotFound(name) from None


def partition_list() -> QuerySet[Partition]:
    return Partition.objects.order_by("partition_key")
