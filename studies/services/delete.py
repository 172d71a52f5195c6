"""Deleting instances: rows and change-feed entries in one transaction, blobs after commit."""

from __future__ import annotations

from django.db import transaction
from django.db.models import Count, Q
from django.utils import timezone

from changefeed.models import ChangeAction, ChangeFeedEntry
from changefeed.services import changefeed_append
from partitions.models import Partition
from studies.blobstore import blob_delete, blob_name
from studies.models import Instance, InstanceStatus, Series, Study
from studies.selectors import instance_not_found
from studies.services.orphans import orphan_record
from studies.versions import instance_scope


def _recount(*, study_id: int) -> None:
    """Recompute a study's and its series' counters; drop rows that hold no instance at all."""
    series_counts = (
        Series.objects.filter(study_id=study_id)
        .annotate(
            created=Count("instances", filter=Q(instances__status=InstanceStatus.CREATED)),
            total=Count("instances"),
        )
        .values("pk", "created", "total", "modality", "num_instances")
    )
    visible_series = 0
    modalities: set[str] = set()
    total_instances = 0
    any_rows = False
    for row in series_counts:
        if row["total"] == 0:
            Series.objects.filter(pk=row["pk"]).delete()
            continue
        any_rows = True
        if row["created"] != row["num_instances"]:
            Series.objects.filter(pk=row["pk"]).update(num_instances=row["created"], updated_at=timezone.now())
        if row["created"]:
            visible_series += 1
            total_instances += row["created"]
            if row["modality"]:
                modalities.add(row["modality"])
    if not any_rows:
        Study.objects.filter(pk=study_id).delete()
        return
    Study.objects.filter(pk=study_id).update(
        num_series=visible_series,
        num_instances=total_instances,
        modalities_in_study="\\".join(sorted(modalities)),
        updated_at=timezone.now(),
    )


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
        # FOR NO KEY UPDATE, as in the store's commit step: it serialises writers of one study
        # without blocking the foreign-key checks of concurrent reservations.
        study = Study.objects.select_for_update(no_key=True).filter(
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
            if not blob_delete(name=name):
                orphan_record(name=name, reason="delete: blob removal failed")
    return len(rows)
