"""Which stored instances an export identifier covers, read page by page.

Instances are walked in (series UID, SOP UID) order with a keyset cursor, so a study of any
size costs one small page of rows at a time and a resumed run continues after the last
instance it recorded, even if instances were added or deleted meanwhile.
"""

from __future__ import annotations

from collections.abc import Iterator

from django.db.models import Q, QuerySet

from operations.export.specification import Identifier
from partitions.models import Partition
from studies.blobstore import blob_name
from studies.models import Instance, InstanceStatus
from studies.selectors import StoredVersion

PAGE = 100


def _instances(*, partition: Partition, identifier: Identifier) -> QuerySet[Instance]:
    filters = Q(partition=partition, study_instance_uid=identifier.study, status=InstanceStatus.CREATED)
    if identifier.series is not None:
        filters &= Q(series_instance_uid=identifier.series)
    if identifier.instance is not None:
        filters &= Q(sop_instance_uid=identifier.instance)
    return Instance.objects.filter(filters)


def export_instances_count(*, partition: Partition, identifier: Identifier) -> int:
    return _instances(partition=partition, identifier=identifier).count()


def _version(partition: Partition, row: tuple[str, str, str, int, str, int, int]) -> StoredVersion:
    study, series, sop, watermark, transfer_syntax, size, frames = row
    return StoredVersion(
        study_instance_uid=study,
        series_instance_uid=series,
        sop_instance_uid=sop,
        watermark=watermark,
        blob_name=blob_name(partition_key=partition.partition_key, watermark=watermark),
        transfer_syntax_uid=transfer_syntax,
        file_size=size,
        number_of_frames=frames,
    )


_COLUMNS = (
    "study_instance_uid",
    "series_instance_uid",
    "sop_instance_uid",
    "watermark",
    "transfer_syntax_uid",
    "file_size",
    "number_of_frames",
)


def export_versions_iter(
    *, partition: Partition, identifier: Identifier, after: tuple[str, str] | None = None
) -> Iterator[StoredVersion]:
    """Latest versions of the covered instances, after the (series, SOP) cursor `after`."""
    instances = _instances(partition=partition, identifier=identifier).order_by(
        "series_instance_uid", "sop_instance_uid"
    )
    while True:
        page = instances
        if after is not None:
            series, sop = after
            page = page.filter(
                Q(series_instance_uid__gt=series) | Q(series_instance_uid=series, sop_instance_uid__gt=sop)
            )
        rows = list(page.values_list(*_COLUMNS)[:PAGE])
        for row in rows:
            yield _version(partition, row)
        if len(rows) < PAGE:
            return
        after = (rows[-1][1], rows[-1][2])


def export_version_get(*, partition: Partition, version: StoredVersion) -> StoredVersion | None:
    """The instance's current latest version (a bulk update may have replaced it), or None if deleted."""
    row = (
        Instance.objects.filter(
            partition=partition,
            study_instance_uid=version.study_instance_uid,
            series_instance_uid=version.series_instance_uid,
            sop_instance_uid=version.sop_instance_uid,
            status=InstanceStatus.CREATED,
        )
        .values_list(*_COLUMNS)
        .first()
    )
    return None if row is None else _version(partition, row)
