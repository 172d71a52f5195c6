"""Which image a thumbnail shows (PS3.18 §10.4.1.1.4 leaves the choice to the server).

An instance's thumbnail is its middle frame; a series' the middle instance by InstanceNumber
(among instances with pixel data); a study's the middle instance of its first series: the one
with the lowest SeriesNumber, ties and series without a number by SeriesInstanceUID.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from dicomsvc.errors import FrameNotFound
from partitions.models import Partition
from studies.dicom.dicomjson import json_loads_fast
from studies.models import Instance
from studies.selectors import VERSION_COLUMNS, StoredVersion, instance_not_found, stored_version
from studies.versions import instance_scope

SERIES_NUMBER = "00200011"


@dataclass(frozen=True)
class ThumbnailSource:
    version: StoredVersion
    frame_number: int


def _series_number(search_metadata: str) -> float:
    if not search_metadata:
        return math.inf
    values = json_loads_fast(search_metadata).get(SERIES_NUMBER, {}).get("Value") or [None]
    return values[0] if isinstance(values[0], int) else math.inf


def thumbnail_source_get(
    *, partition: Partition, study: str, series: str | None = None, instance: str | None = None
) -> ThumbnailSource:
    """The instance version and frame a study's, series' or instance's thumbnail is rendered from."""
    rows = list(
        Instance.objects.filter(instance_scope(partition=partition, study=study, series=series, instance=instance))
        .order_by("series_instance_uid", "instance_number", "watermark")
        .values_list(*VERSION_COLUMNS, "instance_number", "search_metadata")
    )
    if not rows:
        raise instance_not_found(series, instance)
    images = [row for row in rows if row[VERSION_COLUMNS.index("number_of_frames")] > 0]
    if not images:
        raise FrameNotFound()
    series_column = VERSION_COLUMNS.index("series_instance_uid")
    if series is None:
        numbers: dict[str, float] = {}
        for row in images:
            numbers.setdefault(row[series_column], _series_number(row[-1]))
        first = min(numbers, key=lambda uid: (numbers[uid], uid))
        images = [row for row in images if row[series_column] == first]
    number_column = len(VERSION_COLUMNS)
    # NULL instance numbers sort last on every database.
    images.sort(key=lambda row: (row[number_column] is None, row[number_column] or 0))
    middle = images[(len(images) - 1) // 2]
    version = stored_version(partition=partition, row=middle[: len(VERSION_COLUMNS)], original=False)
    return ThumbnailSource(version=version, frame_number=(version.number_of_frames + 1) // 2)
