"""Deleting instances: rows and change-feed entries in one transaction, blobs after commit."""

from __future__ import annotations

from django.db import transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from changefeed.models import ChangeAction, ChangeFeedEntry
from changefeed.services import changefeed_append
from dicomsvc.sqlbatch import statements_run
from partitions.models import Partition
from studies.blobstore import blob_name
from studies.models import Instance, Series, Study
from studies.selectors import instance_not_found
from studies.services.counters import series_counters_refresh, study_counters_refresh
from studies.services.orphans import blob_remove_or_queue
from studies.versions import instance_scope


def _recount(*, study_id: int) -> None:
    """Recount a study and its series (`studies.services.counters`); drop rows that hold no instance at all."""
    now = timezone.now()
    statements_run([series_counters_refresh(study_id=study_id, now=now)])
    Series.objects.filter(study_id=study_id).exclude(Exists(Instance.objects.filter(series_id=OuterRef("pk")))).delete()
    if not Series.objects.filter(study_id=study_id).exists():
        Study.objects.filter(pk=study_id).delete()
        return
    statements_run([study_counters_refresh(study_id=study_id, now=now)])


def instances_delete(
    *,
    partition: Partition,
    study_instance_uid: str,
    series_instance_uid: str | None = None,
    sop_instance_uid: str | None = None,
) -> int:
    """Delete a study, a series or one instance (every version). Returns the instance count."""
    filters = instance_scope(
        partition=partition, study=study_instance_uid, series=series_instance_uid, instance=sop_instance_uid
    )

    with transaction.atomic():
        # FOR UPDATE: besides the store's commit step (FOR NO KEY UPDATE) it waits for the
        # reservations holding the study FOR KEY SHARE (`store_rows._key_share_clause`), so the
        # rows chosen below to drop cannot gain a reserved instance or series before COMMIT.
        study = Study.objects.select_for_update().filter(
            partition=partition, study_instance_uid=study_instance_uid
        ).first()
        rows = list(
            Instance.objects.filter(filters).values_list(
                "pk",
                "series_instance_uid",
                "sop_instance_uid",
                "watermark",
                "original_watermark",
                "new_watermark",
            )
        )
        if study is None or not rows:
            raise instance_not_found(series_instance_uid, sop_instance_uid)
        Instance.objects.filter(pk__in=[row[0] for row in rows]).delete()
        _recount(study_id=study.pk)
        changefeed_append(
            entries=[
                ChangeFeedEntry(
                    action=ChangeAction.DELETE,
                    partition=partition,
                    study_instance_uid=study_instance_uid,
                    series_instance_uid=series_uid,
                    sop_instance_uid=sop_uid,
                    watermark=watermark,
                )
                for _pk, series_uid, sop_uid, watermark, _original, _new in rows
            ]
        )

    # The rows are gone: now the blobs. A failure queues the name for dicom_cleanup.
    for _pk, _series, _sop, watermark, original, new in rows:
        for version in (watermark, original, new):
            if version is None:
                continue
            name = blob_name(partition_key=partition.partition_key, watermark=version)
            blob_remove_or_queue(name=name, reason="delete: blob removal failed")
    return len(rows)
