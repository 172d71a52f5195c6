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
from studies.models import Instance
from studies.selectors import VERSION_COLUMNS, StoredVersion, stored_version
from studies.versions import instance_scope

PAGE = 100


def _instances(*, partition: Partition, identifier: Identifier) -> QuerySet[Instance]:
    return Instance.objects.filter(
        instance_scope(
            partition=partition, study=identifier.study, series=identifier.series, instance=identifier.instance
        )
    )


def export_instances_count(*, partition: Partition, identifier: Identifier) -> int:
    return _instances(partition=partition, identifier=identifier).count()


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
        rows = list(page.values_list(*VERSION_COLUMNS)[:PAGE])
        for row in rows:
            yield stored_version(partition=partition, row=row, original=False)
        if len(rows) < PAGE:
            return
        after = (rows[-1][1], rows[-1][2])


def export_version_get(*, partition: Partition, version: StoredVersion) -> StoredVersion | None:
    """The instance's current latest version (a bulk update may have replaced it), or None if deleted."""
    row = (
        Instance.objects.filter(
            instance_scope(
                partition=partition,
                study=version.study_instance_uid,
                series=version.series_instance_uid,
                instance=version.sop_instance_uid,
            )
        )
        .values_list(*VERSION_COLUMNS)
        .first()
    )
    return None if row is None else stored_version(partition=partition, row=row, original=False)
