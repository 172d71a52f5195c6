"""Start-up guard: partitions cannot be switched off once data has been partitioned."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import Error, register
from django.db import DatabaseError

from dicomsvc.errors import DataPartitionsFeatureCannotBeDisabledException
from partitions.models import DEFAULT_PARTITION_NAME, Partition


def partitions_guard() -> None:
    """Raise if partitions are disabled while non-default partitions exist.

    Skipped while the schema is not there yet (a fresh database before `migrate`).
    """
    if settings.DICOM_ENABLE_DATA_PARTITIONS:
        return
    try:
        others = Partition.objects.exclude(partition_name=DEFAULT_PARTITION_NAME).exists()
    except DatabaseError:
        return
    if others:
        raise DataPartitionsFeatureCannotBeDisabledException()


@register()
def partitions_feature_check(app_configs: Any, **kwargs: Any) -> list[Error]:
    try:
        partitions_guard()
    except DataPartitionsFeatureCannotBeDisabledException as exc:
        return [Error(str(exc), id="partitions.E001", obj="DataPartitionsFeatureCannotBeDisabledException")]
    return []
