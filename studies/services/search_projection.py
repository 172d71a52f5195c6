"""Filling `Instance.search_metadata` for rows stored before it existed (migration 0006)."""

from __future__ import annotations

from studies.dicom.dicomjson import json_loads_fast
from studies.models import Instance
from studies.search.results import search_projection


def search_metadata_backfill(*, batch_size: int = 1000) -> int:
    """Write the search projection of every row that has none; returns how many were written.

    Each write is a compare-and-swap on the row's watermark, so a bulk update that switches a
    row meanwhile (and writes its own projection) is never overwritten with the old one.
    Searches are correct before and during this: a row without a projection is served from
    its metadata.
    """
    written = 0
    last_pk = 0
    while True:
        rows = list(
            Instance.objects.filter(pk__gt=last_pk, search_metadata="")
            .order_by("pk")
            .values_list("pk", "watermark", "metadata")[:batch_size]
        )
        if not rows:
            return written
        for pk, watermark, metadata in rows:
            projection = search_projection(json_loads_fast(metadata))
            written += Instance.objects.filter(pk=pk, watermark=watermark, search_metadata="").update(
                search_metadata=projection
            )
        last_pk = rows[-1][0]
