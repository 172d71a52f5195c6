"""The studies side of a bulk update: new versions of every instance of one study.

The operation (`operations.update.services`) drives these steps for each study and owns
the checkpoint; these functions know nothing of it.

1. `study_update_reserve`: one short transaction gives each visible instance a fresh
   `new_watermark` (compare-and-swap on its watermark). A new_watermark left by an
   interrupted attempt is replaced and its possibly half-written blob queued for removal:
   blob existence does not prove a complete file, and rewriting one study is cheap.
2. `study_update_write`: outside any transaction, each new blob is the latest file with
   the changed attributes and this server's file meta (`studies.dicom.splice`; pixel data
   and every other byte copied as is); the metadata JSON is the stored one with the
   changes merged in.
3. `study_update_switch`, inside the caller's transaction: switches every instance (CAS on
   watermark and new_watermark), keeps the first original (`original_*` are set once),
   updates the study row's columns and queues the blobs the switch made unreachable; then
   `study_update_feed_append` appends one change-feed `update` entry per switched instance,
   as the transaction's last statement (see `changefeed_append`).
4. after commit, the caller removes the unreachable blobs (`orphans_remove`).

A failing study's reservations are released with `study_update_release`, inside the
caller's transaction.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass, field
from typing import Any, cast

from django.db import transaction
from django.db.models import BigIntegerField, F, TextField, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from changefeed.models import ChangeAction, ChangeFeedEntry
from changefeed.services import changefeed_append
from dicomsvc.sqlbatch import statements_joined, statements_run
from partitions.models import Partition
from studies.blobstore import blob_name, blob_open, blob_write
from studies.dicom.changeset import ChangeSet
from studies.dicom.dicomjson import json_dumps
from studies.dicom.implementation import IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME
from studies.dicom.reader import study_columns
from studies.dicom.splice import p10_rewrite
from studies.eqt.index import instances_index_updated
from studies.models import Instance, InstanceStatus, Study
from studies.search.results import projection_keys, search_projection
from studies.services.orphans import orphans_queue, orphans_remove
from studies.services.person_names import person_name_words_statements
from studies.services.watermarks import watermarks_allocate
from studies.versions import instance_scope

# New files up to this size are assembled in memory, larger ones in a temporary file.
SPOOL_BYTES = 8 * 1024 * 1024


@dataclass
class PendingVersion:
    """One instance being updated: its current version and the reserved next one."""

    pk: int
    series_instance_uid: str
    sop_instance_uid: str
    watermark: int
    new_watermark: int
    original_watermark: int | None
    file_size: int
    metadata: str
    new_file_size: int = 0
    new_metadata: str = ""
    new_search_metadata: str = ""
    # What new_search_metadata was written with: the switch renews it if the tag list changed.
    projection_keys: frozenset[str] = frozenset()


@dataclass
class StudySwitch:
    """What `study_update_switch` did: the instances switched, the blobs to remove after commit."""

    switched: list[PendingVersion] = field(default_factory=list)
    removals: list[str] = field(default_factory=list)


def study_update_reserve(*, partition: Partition, study_uid: str) -> list[PendingVersion]:
    """Reserve a new watermark for every visible instance of the study (its own transaction)."""
    rows = list(
        Instance.objects.filter(instance_scope(partition=partition, study=study_uid))
        .order_by("pk")
        .values_list(
            "pk", "series_instance_uid", "sop_instance_uid", "watermark", "new_watermark",
            "original_watermark", "file_size", "metadata",
        )
    )
    if not rows:
        return []
    fresh = watermarks_allocate(count=len(rows))
    reserved: list[PendingVersion] = []
    abandoned: list[str] = []
    with transaction.atomic():
        # The study row first, as every writer of its rows takes it (the store's commit, the
        # delete, the switch below): a delete holding it FOR UPDATE while this took instance
        # rows in another order deadlocked (drills/race.py, PostgreSQL).
        Study.objects.select_for_update(no_key=True).filter(partition=partition, study_instance_uid=study_uid).first()
        for (pk, series, sop, watermark, left_over, original, size, metadata), new in zip(rows, fresh, strict=True):
            taken = Instance.objects.filter(
                pk=pk, status=InstanceStatus.CREATED, watermark=watermark, new_watermark=left_over
            ).update(new_watermark=new)
            if not taken:
                continue  # deleted or changed meanwhile: not ours to update
            if left_over is not None:
                abandoned.append(blob_name(partition_key=partition.partition_key, watermark=left_over))
            reserved.append(PendingVersion(pk, series, sop, watermark, new, original, size, metadata))
        orphans_queue(names=abandoned, reason="bulk update: interrupted attempt replaced")
    orphans_remove(names=abandoned)
    return reserved


def _metadata_merge(text: str, change: ChangeSet) -> dict[str, Any]:
    """The stored DICOM JSON with the changed attributes set, in tag order (as Microsoft's AddOrUpdate)."""
    data = json.loads(text)
    data.update(change.json)
    return dict(sorted(data.items()))


def study_update_write(
    *, partition: Partition, item: PendingVersion, change: ChangeSet
) -> None:
    """Write the instance's new blob and compute its new metadata (no transaction, no row written)."""
    source = blob_name(partition_key=partition.partition_key, watermark=item.watermark)
    target = blob_name(partition_key=partition.partition_key, watermark=item.new_watermark)
    with blob_open(name=source) as fileobj, tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES) as spool:
        p10_rewrite(
            fileobj,
            spool,
            changes=change.elements,
            implementation_class_uid=IMPLEMENTATION_CLASS_UID,
            implementation_version_name=IMPLEMENTATION_VERSION_NAME,
        )
        size = spool.tell()
        spool.seek(0)
        blob_write(name=target, stream=spool, size=size)
    item.new_file_size = size
    merged = _metadata_merge(item.metadata, change)
    item.new_metadata = json_dumps(merged)
    item.projection_keys = projection_keys()
    item.new_search_metadata = search_projection(merged, keys=item.projection_keys)


def study_update_switch(
    *, partition: Partition, study_uid: str, pending: list[PendingVersion], change: ChangeSet
) -> StudySwitch:
    """Inside the caller's transaction: switch the written versions, update the study row."""
    now = timezone.now()
    columns = study_columns(change.first_values())
    result = StudySwitch()
    study = (
        Study.objects.select_for_update(no_key=True)
        .filter(partition=partition, study_instance_uid=study_uid)
        .first()
    )
    keys = projection_keys()
    for item in pending:
        if item.projection_keys != keys:
            item.new_search_metadata = search_projection(json.loads(item.new_metadata), keys=keys)
        done = Instance.objects.filter(
            pk=item.pk, status=InstanceStatus.CREATED, watermark=item.watermark, new_watermark=item.new_watermark
        ).update(
            watermark=item.new_watermark,
            new_watermark=None,
            original_watermark=Coalesce(F("original_watermark"), Value(item.watermark, BigIntegerField())),
            original_file_size=Coalesce(F("original_file_size"), Value(item.file_size, BigIntegerField())),
            original_metadata=Coalesce(F("original_metadata"), Value(item.metadata, TextField())),
            metadata=item.new_metadata,
            search_metadata=item.new_search_metadata,
            file_size=item.new_file_size,
            updated_at=now,
        )
        name = blob_name(partition_key=partition.partition_key, watermark=item.new_watermark)
        if not done:
            result.removals.append(name)  # the instance was deleted meanwhile
            continue
        result.switched.append(item)
        if item.original_watermark is not None:
            # Keep the original and the latest only: the previous latest was an intermediate.
            result.removals.append(blob_name(partition_key=partition.partition_key, watermark=item.watermark))
    instances_index_updated(instance_ids=[item.pk for item in result.switched])
    if study is not None and result.switched and columns:
        statements_run(  # fuzzy QIDO reads these rows
            statements_joined(
                person_name_words_statements(partition_id=study.partition_id, study_id=study.pk, columns=columns)
            )
        )
        Study.objects.filter(pk=study.pk).update(updated_at=now, **columns)
    orphans_queue(names=result.removals, reason="bulk update: replaced version")
    return result


def study_update_feed_append(*, partition: Partition, study_uid: str, switched: list[PendingVersion]) -> None:
    """One change-feed `update` entry per switched instance: the last step of the switch's transaction."""
    changefeed_append(
        entries=[
            ChangeFeedEntry(
                action=ChangeAction.UPDATE,
                partition_id=partition.pk,
                study_instance_uid=study_uid,
                series_instance_uid=item.series_instance_uid,
                sop_instance_uid=item.sop_instance_uid,
                watermark=item.new_watermark,
            )
            for item in switched
        ]
    )


def study_update_release(*, partition: Partition, study_uid: str, pending: list[PendingVersion]) -> list[str]:
    """Inside the caller's transaction: drop the study's reservations and queue their blobs.

    `pending` is what this attempt reserved (empty if the reservation itself failed): their
    blobs are queued whether or not a row still names them. A DELETE racing the update removes
    the row, and the attempt may write the blob after the delete removed what was there; no
    row would ever lead to that blob again. Returns the queued names, for the caller to
    remove after commit.
    """
    # The study row first, as in the reserve and the switch: a delete holding it while this
    # held the rows it clears deadlocked (drills/race.py, PostgreSQL).
    Study.objects.select_for_update(no_key=True).filter(partition=partition, study_instance_uid=study_uid).first()
    reserved = list(
        Instance.objects.filter(
            partition=partition, study_instance_uid=study_uid, new_watermark__isnull=False
        ).values_list("pk", "new_watermark")
    )
    names = {blob_name(partition_key=partition.partition_key, watermark=item.new_watermark) for item in pending}
    for pk, new_watermark in reserved:
        if Instance.objects.filter(pk=pk, new_watermark=new_watermark).update(new_watermark=None):
            # Reserved rows: new_watermark is not null.
            names.add(blob_name(partition_key=partition.partition_key, watermark=cast(int, new_watermark)))
    queued = sorted(names)
    orphans_queue(names=queued, reason="bulk update: failed study")
    return queued
