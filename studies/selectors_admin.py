"""Reads for the admin's study, series and instance pages: a fixed number of queries per page.

Series rows hold no SeriesNumber, SeriesDescription or BodyPartExamined; a series list takes
them from the newest visible instance's metadata, fetched by a correlated subquery in the
list's own query (as QIDO does), and each series of a study page names the instance its
thumbnail shows (the lowest InstanceNumber) the same way.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from django.db.models import OuterRef, QuerySet, Subquery

from studies.models import Instance, InstanceStatus, Series

# Attributes a series list shows from its newest instance.
SERIES_LIST_TAGS = {"number": "00200011", "description": "0008103E", "body_part": "00180015"}


def _visible(owner: str) -> QuerySet[Instance]:
    return Instance.objects.filter(**{owner: OuterRef("pk")}, status=InstanceStatus.CREATED)


def series_list_annotate(queryset: QuerySet[Series]) -> QuerySet[Series]:
    """Series with `newest_metadata`: the DICOM JSON of their newest visible instance."""
    newest = _visible("series_id").order_by("-watermark").values("metadata")[:1]
    return queryset.annotate(newest_metadata=Subquery(newest))


def metadata_value(document: str | None, tag: str) -> str:
    """The first value of `tag` in a DICOM JSON text, as text ("" when absent)."""
    if not document:
        return ""
    element = json.loads(document).get(tag) or {}
    values = element.get("Value") or [""]
    return "" if values[0] is None else str(values[0])


@dataclass(frozen=True)
class SeriesSummary:
    """A series of a study page: its columns, list attributes and the instance its thumbnail shows."""

    series: Series
    number: str
    description: str
    body_part: str
    thumbnail_instance_id: int | None
    thumbnail_watermark: int | None
    thumbnail_frames: int


def series_summaries_for_study(*, study_id: int) -> list[SeriesSummary]:
    """The visible series of a study, by SeriesNumber then creation, in one query."""
    first = _visible("series_id").order_by("instance_number", "watermark")
    rows = (
        series_list_annotate(Series.objects.filter(study_id=study_id, num_instances__gt=0))
        .annotate(
            thumbnail_instance_id=Subquery(first.values("pk")[:1]),
            thumbnail_watermark=Subquery(first.values("watermark")[:1]),
            thumbnail_frames=Subquery(first.values("number_of_frames")[:1]),
        )
        .order_by("pk")
    )
    summaries = [_summary(row) for row in rows]

    def order(summary: SeriesSummary) -> tuple[int, int]:
        number = summary.number
        return (int(number) if number.lstrip("-").isdigit() else 2**31, summary.series.pk)

    return sorted(summaries, key=order)


def _summary(row: Any) -> SeriesSummary:
    document = row.newest_metadata
    return SeriesSummary(
        series=row,
        number=metadata_value(document, SERIES_LIST_TAGS["number"]),
        description=metadata_value(document, SERIES_LIST_TAGS["description"]),
        body_part=metadata_value(document, SERIES_LIST_TAGS["body_part"]),
        thumbnail_instance_id=row.thumbnail_instance_id,
        thumbnail_watermark=row.thumbnail_watermark,
        thumbnail_frames=row.thumbnail_frames or 0,
    )


def instances_for_series_page(*, series_id: int, limit: int) -> list[Instance]:
    """The first `limit` visible instances of a series by InstanceNumber (the series page's thumbnails)."""
    return list(
        Instance.objects.filter(series_id=series_id, status=InstanceStatus.CREATED)
        .only("pk", "instance_number", "watermark", "number_of_frames", "sop_instance_uid")
        .order_by("instance_number", "watermark")[:limit]
    )
