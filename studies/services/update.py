"""Bulk update ($bulkUpdate): new patient and study attributes for every instance of up to 50 studies.

Start (`bulk_update_start`): validate, then persist the operation; the partial unique
constraint `one_active_update` refuses a second unfinished one (409). The task is enqueued
when the row commits.

Run (`bulk_update_run`, in a Celery worker under the operation's lease), one study at a time:

1. reserve: one short transaction gives each visible instance a fresh `new_watermark`
   (compare-and-swap on its watermark). A new_watermark left by an interrupted attempt is
   replaced and its possibly half-written blob queued for removal: blob existence does not
   prove a complete file, and rewriting one study is cheap.
2. write: outside any transaction, each new blob is the latest file with the changed
   attributes and this server's file meta (`studies.dicom.splice`; pixel data and every
   other byte copied as is); the metadata JSON is the stored one with the changes merged in.
3. switch: one transaction locks the operation row (only the lease holder gets further),
   checks the checkpoint still points at this study, switches every instance (CAS on
   watermark and new_watermark), keeps the first original (`original_*` are set once),
   updates the study row's columns, appends one change-feed `update` entry per instance,
   and advances the checkpoint and results.
4. after commit: the intermediate blobs (a previous non-original latest) are removed.

The checkpoint advances in the same transaction as the switches, so a resumed run neither
switches an instance twice nor skips one. A failing study releases its reservations, is
reported in `results.errors`, and the others continue.
"""

from __future__ import annotations

import json
import logging
import tempfile
import time
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import BigIntegerField, F, TextField, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from changefeed.models import ChangeAction, ChangeFeedEntry
from changefeed.services import changefeed_append
from dicomsvc.errors import BadRequest, FailedAttributes, InvalidRequestBody, UpdateOperationActive
from dicomsvc.sqlbatch import statements_run
from operations.models import Operation, OperationStatus, OperationType
from operations.selectors import operation_active_get
from operations.services import LeaseLost, OperationRun, operation_create, operation_handler
from partitions.models import Partition
from studies.blobstore import blob_name, blob_open, blob_write
from studies.dicom.changeset import ChangeDatasetMalformed, ChangeDatasetRefused, ChangeSet, changeset_parse
from studies.dicom.dicomjson import json_dumps
from studies.dicom.implementation import IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME
from studies.dicom.reader import study_columns
from studies.dicom.splice import p10_rewrite
from studies.dicom.uids import UID_INVALID_REASON, uid_is_valid, uid_normalize
from studies.models import Instance, InstanceStatus, Study
from studies.search.results import search_projection
from studies.services.orphans import orphans_queue, orphans_remove
from studies.services.person_names import person_name_words_statements
from studies.services.watermarks import watermarks_allocate

logger = logging.getLogger(__name__)

MAX_STUDIES = 50
# New files up to this size are assembled in memory, larger ones in a temporary file.
SPOOL_BYTES = 8 * 1024 * 1024


# --- Start --------------------------------------------------------------------------------


def _study_uids(value: Any) -> list[str]:
    if value is None or value == []:
        raise BadRequest("The required field 'StudyInstanceUids' is missing or empty.")
    if not isinstance(value, list) or not all(isinstance(uid, str) for uid in value):
        raise BadRequest("The field 'studyInstanceUids' in request body is invalid: expected an array of strings.")
    if len(value) > MAX_STUDIES:
        raise BadRequest(f"StudyInstanceUids count exceeded maximum length '{MAX_STUDIES}'")
    uids: list[str] = []
    for raw in value:
        if not uid_is_valid(raw):
            raise BadRequest(
                f"Dicom element 'StudyInstanceUid' failed validation for VR 'UI': {UID_INVALID_REASON} "
                f"Value: '{raw}'."
            )
        uid = uid_normalize(raw)
        if uid not in uids:
            uids.append(uid)
    return uids


def _change_set(value: Any) -> ChangeSet:
    try:
        return changeset_parse(value)
    except ChangeDatasetMalformed as exc:
        raise BadRequest(str(exc)) from None
    except ChangeDatasetRefused as exc:
        raise FailedAttributes(exc.comments) from None


def bulk_update_start(*, partition: Partition, body: Any) -> Operation:
    """Validate a $bulkUpdate request and create its operation (enqueued on commit)."""
    if not isinstance(body, dict):
        raise InvalidRequestBody()
    # Property names are case-insensitive on input (reference §1.2).
    fields = {str(key).lower(): value for key, value in body.items()}
    uids = _study_uids(fields.get("studyinstanceuids"))
    change = _change_set(fields.get("changedataset"))
    parameters = {"studyInstanceUids": uids, "changeDataset": change.json}
    for attempt in range(2):
        try:
            with transaction.atomic():
                return operation_create(type=OperationType.UPDATE, partition=partition, parameters=parameters)
        except IntegrityError:
            active = operation_active_get(type=OperationType.UPDATE)
            if active is not None:
                raise UpdateOperationActive(active.pk.hex) from None
            if attempt:
                raise
    raise AssertionError("unreachable")


# --- Run ----------------------------------------------------------------------------------


class CheckpointMismatch(Exception):
    """The checkpoint is not at the study this runner is on: a bug, never a per-study failure."""


@dataclass
class _Pending:
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


def _results(operation: Operation) -> dict[str, Any]:
    results = dict(operation.results or {})
    for key in ("studyProcessed", "studyUpdated", "studyFailed", "instanceUpdated"):
        results.setdefault(key, 0)
    return results


def _reserve(*, partition: Partition, study_uid: str) -> list[_Pending]:
    rows = list(
        Instance.objects.filter(partition=partition, study_instance_uid=study_uid, status=InstanceStatus.CREATED)
        .order_by("pk")
        .values_list(
            "pk", "series_instance_uid", "sop_instance_uid", "watermark", "new_watermark",
            "original_watermark", "file_size", "metadata",
        )
    )
    if not rows:
        return []
    fresh = watermarks_allocate(count=len(rows))
    reserved: list[_Pending] = []
    abandoned: list[str] = []
    with transaction.atomic():
        for (pk, series, sop, watermark, left_over, original, size, metadata), new in zip(rows, fresh, strict=True):
            taken = Instance.objects.filter(
                pk=pk, status=InstanceStatus.CREATED, watermark=watermark, new_watermark=left_over
            ).update(new_watermark=new)
            if not taken:
                continue  # deleted or changed meanwhile: not ours to update
            if left_over is not None:
                abandoned.append(blob_name(partition_key=partition.partition_key, watermark=left_over))
            reserved.append(_Pending(pk, series, sop, watermark, new, original, size, metadata))
        orphans_queue(names=abandoned, reason="bulk update: interrupted attempt replaced")
    orphans_remove(names=abandoned)
    return reserved


def _metadata_merge(text: str, change_json: dict[str, Any]) -> dict[str, Any]:
    """The stored DICOM JSON with the changed attributes set, in tag order (as Microsoft's AddOrUpdate)."""
    data = json.loads(text)
    data.update(change_json)
    return dict(sorted(data.items()))


def _rewrite(*, partition: Partition, item: _Pending, change: ChangeSet, change_json: dict[str, Any]) -> None:
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
        blob_write(name=target, stream=spool, size=size)  # type: ignore[arg-type]
    item.new_file_size = size
    merged = _metadata_merge(item.metadata, change_json)
    item.new_metadata = json_dumps(merged)
    item.new_search_metadata = search_projection(merged)


def _switch(
    *, run: OperationRun, partition: Partition, study_uid: str, index: int, total: int,
    pending: list[_Pending], change: ChangeSet,
) -> list[str]:
    """The study's one transaction: switch versions, study row, change feed, checkpoint."""
    now = timezone.now()
    columns = study_columns(change.first_values())
    removals: list[str] = []
    with transaction.atomic():
        operation = run.lock()
        if (operation.checkpoint or {}).get("index", 0) != index:
            raise CheckpointMismatch(operation.pk.hex)
        study = (
            Study.objects.select_for_update(no_key=True)
            .filter(partition=partition, study_instance_uid=study_uid)
            .first()
        )
        switched: list[_Pending] = []
        for item in pending:
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
                removals.append(name)  # the instance was deleted meanwhile
                continue
            switched.append(item)
            if item.original_watermark is not None:
                # Keep the original and the latest only: the previous latest was an intermediate.
                removals.append(blob_name(partition_key=partition.partition_key, watermark=item.watermark))
        if study is not None and switched and columns:
            statements_run(  # fuzzy QIDO reads these rows
                person_name_words_statements(partition_id=study.partition_id, study_id=study.pk, columns=columns)
            )
            Study.objects.filter(pk=study.pk).update(updated_at=now, **columns)
        orphans_queue(names=removals, reason="bulk update: replaced version")
        results = _results(operation)
        results["studyProcessed"] += 1
        if switched:
            results["studyUpdated"] += 1
            results["instanceUpdated"] += len(switched)
        run.progress(
            percent_complete=(index + 1) * 100 // total, checkpoint={"index": index + 1}, results=results
        )
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
    return removals


def _study_failed(*, run: OperationRun, partition: Partition, study_uid: str, index: int, total: int) -> None:
    """Release the study's reservations and record the failure; the next study goes on."""
    reserved = list(
        Instance.objects.filter(
            partition=partition, study_instance_uid=study_uid, new_watermark__isnull=False
        ).values_list("pk", "new_watermark")
    )
    names: list[str] = []
    with transaction.atomic():
        operation = run.lock()
        if (operation.checkpoint or {}).get("index", 0) != index:
            raise CheckpointMismatch(operation.pk.hex)
        for pk, new_watermark in reserved:
            if Instance.objects.filter(pk=pk, new_watermark=new_watermark).update(new_watermark=None):
                names.append(blob_name(partition_key=partition.partition_key, watermark=new_watermark))
        orphans_queue(names=names, reason="bulk update: failed study")
        results = _results(operation)
        results["studyProcessed"] += 1
        results["studyFailed"] += 1
        results["errors"] = [*results.get("errors", []), f"Failed to update instances for study {study_uid}"]
        run.progress(percent_complete=(index + 1) * 100 // total, checkpoint={"index": index + 1}, results=results)
    orphans_remove(names=names)


def _study_update(
    *, run: OperationRun, partition: Partition, study_uid: str, index: int, total: int, change: ChangeSet,
    change_json: dict[str, Any],
) -> None:
    pending = _reserve(partition=partition, study_uid=study_uid)
    delay = settings.DICOM_UPDATE_INSTANCE_DELAY_MS / 1000

    def rewrite(item: _Pending) -> None:
        _rewrite(partition=partition, item=item, change=change, change_json=change_json)
        if delay:
            time.sleep(delay)

    # Writing a blob is mostly waiting for fsync, so a few files are written at once. The
    # database is only touched from this thread; workers never hold a transaction.
    with ThreadPoolExecutor(max_workers=settings.DICOM_UPDATE_PARALLEL_FILES) as pool:
        futures = [pool.submit(rewrite, item) for item in pending]
        try:
            remaining = set(futures)
            while remaining:
                done, remaining = wait(remaining, timeout=1, return_when=FIRST_EXCEPTION)
                for future in done:
                    future.result()  # re-raises the first failure
                run.heartbeat()
        except BaseException:
            for future in futures:
                future.cancel()
            raise
    removals = _switch(
        run=run, partition=partition, study_uid=study_uid, index=index, total=total, pending=pending, change=change
    )
    orphans_remove(names=removals)


@operation_handler(OperationType.UPDATE)
def bulk_update_run(run: OperationRun) -> OperationStatus:
    """Update every study of the operation, from its checkpoint on."""
    operation = run.operation
    partition = Partition.objects.get(pk=operation.partition_id)
    uids: list[str] = operation.parameters["studyInstanceUids"]
    change = changeset_parse(operation.parameters["changeDataset"])
    change_json = change.json
    start = int((operation.checkpoint or {}).get("index", 0))
    if start == 0 and operation.results is None:
        run.progress(percent_complete=0, checkpoint={"index": 0}, results=_results(operation))
    for index in range(start, len(uids)):
        try:
            _study_update(
                run=run, partition=partition, study_uid=uids[index], index=index, total=len(uids),
                change=change, change_json=change_json,
            )
        except (LeaseLost, CheckpointMismatch):
            raise
        except Exception:
            logger.exception("bulk update %s: study %s failed", operation.pk.hex, uids[index])
            _study_failed(run=run, partition=partition, study_uid=uids[index], index=index, total=len(uids))
    final = Operation.objects.get(pk=operation.pk)
    return OperationStatus.FAILED if _results(final)["studyFailed"] else OperationStatus.SUCCEEDED
