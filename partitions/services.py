"""Writes of partitions: the only one is implicit creation on STOW (and workitem create)."""

from __future__ import annotations

from django.db import IntegrityError, transaction

from dicomsvc.errors import PartitionNotFound
from partitions.models import Partition
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
