"""Two rules every reader of instances shares: which rows a request covers, and which version it serves.

The scope is a partition's CREATED instances of a study, optionally narrowed to a series and one
instance: a row still being stored is never visible. WADO, frames, rendered, export, delete, the
bulk update and the admin all read through these two functions, so they cannot drift apart.
"""

from __future__ import annotations

from typing import NamedTuple

from django.db.models import Q

from partitions.models import Partition
from studies.models import InstanceStatus


def _scope_conditions(
    *, partition: Partition, study: str, series: str | None, instance: str | None
) -> list[tuple[str, object]]:
    conditions: list[tuple[str, object]] = [
        ("partition_id", partition.pk),
        ("study_instance_uid", study),
        ("status", int(InstanceStatus.CREATED)),
    ]
    if series is not None:
        conditions.append(("series_instance_uid", series))
    if instance is not None:
        conditions.append(("sop_instance_uid", instance))
    return conditions


def instance_scope(*, partition: Partition, study: str, series: str | None = None, instance: str | None = None) -> Q:
    """Visible (CREATED) instances of a study, a series or one instance in a partition."""
    return Q(*_scope_conditions(partition=partition, study=study, series=series, instance=instance))


def instance_scope_sql(
    *, partition: Partition, study: str, series: str | None = None, instance: str | None = None
) -> tuple[str, list[object]]:
    """`instance_scope` as a plain SQL condition on the instance table and its parameters."""
    conditions = _scope_conditions(partition=partition, study=study, series=series, instance=instance)
    return " AND ".join(f"{column} = %s" for column, _ in conditions), [value for _, value in conditions]


class Version(NamedTuple):
    """The stored version a read serves: its blob's watermark and size (a tuple: built per
    instance of every retrieve, and a frozen dataclass costs a call per field to build)."""

    watermark: int
    file_size: int
    original: bool  # the first-stored version kept by a bulk update, not the latest


def version_select(
    *,
    original: bool,
    watermark: int,
    original_watermark: int | None,
    file_size: int = 0,
    original_file_size: int | None = None,
) -> Version:
    """The latest version, or the original when asked for and a bulk update kept one.

    An instance never updated has no original: its latest version is the one first stored.
    """
    if original and original_watermark is not None:
        size = original_file_size if original_file_size is not None else file_size
        return Version(watermark=original_watermark, file_size=size, original=True)
    return Version(watermark=watermark, file_size=file_size, original=False)
