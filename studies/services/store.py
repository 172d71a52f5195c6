"""Storing one instance: reserve the row, write the blob, then make it visible.

1. A short transaction inserts the instance row in status CREATING under a fresh watermark;
   the unique constraint decides races (45070 already stored, 45071 being stored).
2. The blob is written, outside any transaction, under that watermark's name.
3. A second short transaction flips the row to CREATED, updates the study and series rows
   and appends the change-feed entry. Only now can any reader see the instance.

A crash after 1 leaves an invisible CREATING row (taken over once stale, or removed by
`manage.py dicom_cleanup`); a crash after 2 also leaves a blob no visible row points at.
Neither is ever served.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from changefeed.models import ChangeAction, ChangeFeedEntry
from changefeed.services import changefeed_append
from partitions.models import Partition
from studies.blobstore import blob_delete, blob_name, blob_write
from studies.dicom.reader import ParsedInstance, parsed_indexed_columns
from studies.models import Instance, InstanceStatus, Series, Study
from studies.services.orphans import orphan_record
from studies.services.person_names import person_name_words_sync
from studies.services.watermarks import watermarks_allocate

logger = logging.getLogger(__name__)


class InstanceAlreadyExists(Exception):
    """45070: the same UIDs are already stored in this partition."""


class InstancePending(Exception):
    """45071: another request is storing the same UIDs right now."""


class StoreFailed(Exception):
    """272: the instance could not be stored; nothing of it is visible."""


@dataclass
class StoreOutcome:
    instance: Instance


def _reserve(*, partition: Partition, parsed: ParsedInstance, watermark: int) -> Instance:
    uids = parsed.uids
    with transaction.atomic():
        study, _ = Study.objects.get_or_create(partition=partition, study_instance_uid=uids["StudyInstanceUID"])
        series, _ = Series.objects.get_or_create(
            study=study,
            series_instance_uid=uids["SeriesInstanceUID"],
            defaults={"partition": partition},
        )
        return Instance.objects.create(
            partition=partition,
            study=study,
            series=series,
            study_instance_uid=uids["StudyInstanceUID"],
            series_instance_uid=uids["SeriesInstanceUID"],
            sop_instance_uid=uids["SOPInstanceUID"],
            sop_class_uid=parsed.indexed.get("SOPClassUID", uids["SOPClassUID"]),
            instance_number=parsed.instance_number,
            status=InstanceStatus.CREATING,
            watermark=watermark,
            transfer_syntax_uid=parsed.transfer_syntax_uid,
            file_size=parsed.stream.size,
            number_of_frames=parsed.number_of_frames,
            frame_index=parsed.frame_index_text,
            metadata=parsed.metadata_text,
        )


def _existing_blocker(*, partition: Partition, parsed: ParsedInstance) -> Exception:
    """Why the reservation lost: already stored, or in creation (taking over a stale one)."""
    uids = parsed.uids
    existing = Instance.objects.filter(
        partition=partition,
        study_instance_uid=uids["StudyInstanceUID"],
        series_instance_uid=uids["SeriesInstanceUID"],
        sop_instance_uid=uids["SOPInstanceUID"],
    ).first()
    if existing is None:
        return InstancePending()  # removed meanwhile; the client may retry
    if existing.status == InstanceStatus.CREATED:
        return InstanceAlreadyExists()
    stale_before = timezone.now() - dt.timedelta(seconds=settings.DICOM_STALE_CREATING_SECONDS)
    if existing.created_at < stale_before:
        # A crashed request left this row; remove it (compare-and-swap on its watermark)
        # so the caller can retry, and queue its possibly-written blob for removal.
        removed, _ = Instance.objects.filter(
            pk=existing.pk, status=InstanceStatus.CREATING, watermark=existing.watermark
        ).delete()
        if removed:
            name = blob_name(partition_key=partition.partition_key, watermark=existing.watermark)
            if not blob_delete(name=name):
                orphan_record(name=name, reason="stale creating row taken over")
            return _Retry()
    return InstancePending()


class _Retry(Exception):
    pass


def _commit(*, instance: Instance, parsed: ParsedInstance) -> bool:
    columns = parsed_indexed_columns(parsed)
    with transaction.atomic():
        # FOR NO KEY UPDATE, not FOR UPDATE: it still serialises committers of one study, but
        # does not conflict with the FOR KEY SHARE that PostgreSQL's deferred foreign-key
        # checks take when a concurrent reservation commits. With FOR UPDATE those two lock
        # the study and series in opposite orders and deadlock under parallel STOWs.
        study = Study.objects.select_for_update(no_key=True).get(pk=instance.study_id)
        series = Series.objects.select_for_update(no_key=True).get(pk=instance.series_id)
        flipped = Instance.objects.filter(pk=instance.pk, status=InstanceStatus.CREATING).update(
            status=InstanceStatus.CREATED, updated_at=timezone.now()
        )
        if flipped != 1:
            return False
        series_new = series.num_instances == 0
        Series.objects.filter(pk=series.pk).update(
            num_instances=F("num_instances") + 1, updated_at=timezone.now(), **columns["series"]
        )
        modalities = set(
            Series.objects.filter(study_id=study.pk, num_instances__gt=0)
            .exclude(pk=series.pk)
            .exclude(modality="")
            .values_list("modality", flat=True)
        )
        if columns["series"]["modality"]:
            modalities.add(columns["series"]["modality"])
        person_name_words_sync(study=study, columns=columns["study"])
        Study.objects.filter(pk=study.pk).update(
            num_instances=F("num_instances") + 1,
            num_series=F("num_series") + (1 if series_new else 0),
            modalities_in_study="\\".join(sorted(modalities)),
            updated_at=timezone.now(),
            **columns["study"],
        )
        changefeed_append(
            entries=[
                ChangeFeedEntry(
                    action=ChangeAction.CREATE,
                    partition_id=instance.partition_id,
                    study_instance_uid=instance.study_instance_uid,
                    series_instance_uid=instance.series_instance_uid,
                    sop_instance_uid=instance.sop_instance_uid,
                    watermark=instance.watermark,
                )
            ]
        )
    return True


def _discard(*, instance: Instance, name: str) -> None:
    """Undo a reservation whose blob write or commit failed."""
    Instance.objects.filter(pk=instance.pk, status=InstanceStatus.CREATING).delete()
    if not blob_delete(name=name):
        orphan_record(name=name, reason="store failed after blob write")


def instance_store(*, partition: Partition, parsed: ParsedInstance) -> StoreOutcome:
    """Store a validated instance. Raises InstanceAlreadyExists, InstancePending or StoreFailed."""
    for _attempt in range(2):
        (watermark,) = watermarks_allocate(count=1)
        try:
            instance = _reserve(partition=partition, parsed=parsed, watermark=watermark)
        except IntegrityError:
            blocker = _existing_blocker(partition=partition, parsed=parsed)
            if isinstance(blocker, _Retry):
                continue
            raise blocker from None
        break
    else:
        raise InstancePending()

    name = blob_name(partition_key=partition.partition_key, watermark=instance.watermark)
    try:
        blob_write(name=name, stream=parsed.stream, size=parsed.stream.size)
        committed = _commit(instance=instance, parsed=parsed)
    except Exception as exc:
        logger.exception("storing %s failed", instance.sop_instance_uid)
        _discard(instance=instance, name=name)
        raise StoreFailed(str(exc)) from exc
    if not committed:
        _discard(instance=instance, name=name)
        raise StoreFailed("the reservation was taken over as stale before the store finished")
    instance.status = InstanceStatus.CREATED
    return StoreOutcome(instance=instance)
