"""Change-feed rows for the feed and admin tests: update and delete through the services, bulk rows."""

from __future__ import annotations

import datetime as dt
import json

from django.db import transaction

from changefeed.models import ChangeAction, ChangeFeedEntry
from changefeed.services import changefeed_append
from partitions.models import Partition
from studies.models import Instance
from studies.services import instances_delete, watermarks_allocate


def update(instance: Instance, **changes: str) -> Instance:
    """Write what a bulk update writes: a new watermark and metadata, and an UPDATE entry.

    (Blob rewriting is the bulk-update service's business; the feed only sees the rows.)
    """
    (new_watermark,) = watermarks_allocate(count=1)
    instance = Instance.objects.get(pk=instance.pk)
    metadata = json.loads(instance.metadata)
    for keyword_tag, value in changes.items():
        metadata[keyword_tag]["Value"] = [value]
    with transaction.atomic():
        Instance.objects.filter(pk=instance.pk).update(
            original_watermark=instance.original_watermark or instance.watermark,
            watermark=new_watermark,
            metadata=json.dumps(metadata),
        )
        changefeed_append(
            entries=[
                ChangeFeedEntry(
                    action=ChangeAction.UPDATE,
                    partition_id=instance.partition_id,
                    study_instance_uid=instance.study_instance_uid,
                    series_instance_uid=instance.series_instance_uid,
                    sop_instance_uid=instance.sop_instance_uid,
                    watermark=new_watermark,
                )
            ]
        )
    return Instance.objects.get(pk=instance.pk)


def delete(instance: Instance) -> None:
    instances_delete(
        partition=Partition.objects.get(pk=instance.partition_id),
        study_instance_uid=instance.study_instance_uid,
        series_instance_uid=instance.series_instance_uid,
        sop_instance_uid=instance.sop_instance_uid,
    )


def feed_rows(count: int, *, start: dt.datetime, step: dt.timedelta, partition_key: int = 1) -> list[ChangeFeedEntry]:
    """`count` entries with known timestamps, inserted in order (their instances do not exist)."""
    rows = [
        ChangeFeedEntry(
            timestamp=start + index * step,
            action=ChangeAction.CREATE,
            partition_id=partition_key,
            study_instance_uid=f"1.2.826.0.1.3680043.10.1.{index}",
            series_instance_uid=f"1.2.826.0.1.3680043.10.2.{index}",
            sop_instance_uid=f"1.2.826.0.1.3680043.10.3.{index}",
            watermark=10_000_000 + index,
        )
        for index in range(count)
    ]
    ChangeFeedEntry.objects.bulk_create(rows, batch_size=1000)
    return list(ChangeFeedEntry.objects.order_by("sequence"))
