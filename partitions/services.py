"""Writes of partitions: the only one is implicit creation on STOW (and workitem create)."""

from __future__ import annotations

from django.db import IntegrityError, transaction

from dicomsvc.errors import PartitionNotFound
from partitions.models import DEFAULT_PARTITION_KEY, DEFAULT_PARTITION_NAME, Partition
from partitions.selectors import partition_get, partition_name_validate


def partition_get_or_create(*, name: str) -> Partition:
    """Race-safe get-or-add: two requests creating one name both end with the same row."""
    partition_name_validate(name=name)
    try:
        return partition_get(name=name)
    except PartitionNotFound:
        pass
    try:
        with transaction.atomic():
            Partition.objects.create(partition_name=name)
    except IntegrityError:
        pass  # another request created it first
    return partition_get(name=name)


def partition_default() -> Partition:
    """Microsoft.Default (key 1). A migration creates it; re-created here if a database was
    emptied without re-running migrations (a flushed test database, a manual TRUNCATE)."""
    try:
        return partition_get(name=DEFAULT_PARTITION_NAME)
    except PartitionNotFound:
        pass
    try:
        with transaction.atomic():
            Partition.objects.create(partition_key=DEFAULT_PARTITION_KEY, partition_name=DEFAULT_PARTITION_NAME)
    except IntegrityError:
        pass
    return partition_get(name=DEFAULT_PARTITION_NAME)
