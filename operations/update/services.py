"""Bulk update ($bulkUpdate) as an operation: new patient and study attributes for every
instance of up to 50 studies. `update_create` answers the request, `update_execute` runs on
a worker.

Create: validate, then persist the operation; the partial unique constraint
`one_active_update` refuses a second unfinished one (409). The task is enqueued when the
row commits.

Run (under the operation's lease), one study at a time, through the studies services of
`studies.services.study_update` (reserve, write, switch; see there):

1. reserve the study's new watermarks (their own short transaction);
2. write the new blobs, outside any transaction, a few at once, renewing the lease;
3. switch in one transaction that first locks the operation row (only the lease holder gets
   further) and checks the checkpoint still points at this study, then switches the
   instances and the study row, advances the checkpoint and results, and appends the
   change-feed entries last;
4. after commit, remove the blobs the switch made unreachable.

The checkpoint advances in the same transaction as the switches, so a resumed run neither
switches an instance twice nor skips one. A failing study releases its reservations, is
reported in `results.errors`, and the others continue.
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from typing import Any, cast

from django.conf import settings
from django.db import IntegrityError, transaction

from dicomsvc.dicom_values import uid_is_valid, uid_normalize
from dicomsvc.errors import BadRequest, FailedAttributes, InvalidRequestBody, UpdateOperationActive
from operations.models import Operation, OperationStatus, OperationType
from operations.selectors import operation_active_get
from operations.services import LeaseLost, OperationRun, operation_create
from partitions.models import Partition
from studies.dicom.changeset import ChangeDatasetMalformed, ChangeDatasetRefused, ChangeSet, changeset_parse
from studies.dicom.uids import UID_INVALID_REASON
from studies.services.orphans import orphans_remove
from studies.services.study_update import (
    PendingVersion,
    study_update_feed_append,
    study_update_release,
    study_update_reserve,
    study_update_switch,
    study_update_write,
)

logger = logging.getLogger(__name__)

MAX_STUDIES = 50


# --- Create -------------------------------------------------------------------------------


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


def update_create(*, partition: Partition, body: Any) -> Operation:
    """Validate a $bulkUpdate request and create its operation (enqueued on commit)."""
    if not isinstance(body, dict):
        raise InvalidRequestBody()
    # Property names are case-insensitive on input, as in Microsoft's server.
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


def _results(operation: Operation) -> dict[str, Any]:
    results = dict(operation.results or {})
    for key in ("studyProcessed", "studyUpdated", "studyFailed", "instanceUpdated"):
        results.setdefault(key, 0)
    return results


def _checkpoint_lock(run: OperationRun, index: int) -> Operation:
    """Inside a transaction: lock the operation row; LeaseLost or CheckpointMismatch unless it is ours at `index`."""
    operation = run.lock()
    if (operation.checkpoint or {}).get("index", 0) != index:
        raise CheckpointMismatch(operation.pk.hex)
    return operation


def _switch(
    *, run: OperationRun, partition: Partition, study_uid: str, index: int, total: int,
    pending: list[PendingVersion], change: ChangeSet,
) -> list[str]:
    """The study's one transaction: switch versions, study row, checkpoint, change feed."""
    with transaction.atomic():
        operation = _checkpoint_lock(run, index)
        switch = study_update_switch(partition=partition, study_uid=study_uid, pending=pending, change=change)
        results = _results(operation)
        results["studyProcessed"] += 1
        if switch.switched:
            results["studyUpdated"] += 1
            results["instanceUpdated"] += len(switch.switched)
        run.progress(
            percent_complete=(index + 1) * 100 // total, checkpoint={"index": index + 1}, results=results
        )
        study_update_feed_append(partition=partition, study_uid=study_uid, switched=switch.switched)
    return switch.removals


def _study_failed(
    *, run: OperationRun, partition: Partition, study_uid: str, index: int, total: int, pending: list[PendingVersion]
) -> None:
    """Release the study's reservations and record the failure; the next study goes on."""
    logger.exception("bulk update %s: study %s failed", run.operation.pk.hex, study_uid)
    with transaction.atomic():
        operation = _checkpoint_lock(run, index)
        names = study_update_release(partition=partition, study_uid=study_uid, pending=pending)
        results = _results(operation)
        results["studyProcessed"] += 1
        results["studyFailed"] += 1
        results["errors"] = [*results.get("errors", []), f"Failed to update instances for study {study_uid}"]
        run.progress(percent_complete=(index + 1) * 100 // total, checkpoint={"index": index + 1}, results=results)
    orphans_remove(names=names)


def _study_update(
    *, run: OperationRun, partition: Partition, study_uid: str, index: int, total: int, change: ChangeSet
) -> None:
    pending = study_update_reserve(partition=partition, study_uid=study_uid)
    try:
        _versions_write(run=run, partition=partition, pending=pending, change=change)
        removals = _switch(
            run=run, partition=partition, study_uid=study_uid, index=index, total=total, pending=pending,
            change=change,
        )  # fmt: skip
    except (LeaseLost, CheckpointMismatch):
        raise
    except Exception:
        _study_failed(run=run, partition=partition, study_uid=study_uid, index=index, total=total, pending=pending)
        return
    orphans_remove(names=removals)


def _versions_write(
    *, run: OperationRun, partition: Partition, pending: list[PendingVersion], change: ChangeSet
) -> None:
    """Write the new blobs of the study's instances, renewing the lease meanwhile."""
    delay = settings.DICOM_UPDATE_INSTANCE_DELAY_MS / 1000

    def write(item: PendingVersion) -> None:
        study_update_write(partition=partition, item=item, change=change)
        if delay:
            time.sleep(delay)

    # Writing a blob is mostly waiting for fsync, so a few files are written at once. The
    # database is only touched from this thread; workers never hold a transaction.
    with ThreadPoolExecutor(max_workers=settings.DICOM_UPDATE_PARALLEL_FILES) as pool:
        futures = [pool.submit(write, item) for item in pending]
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


def update_execute(run: OperationRun) -> OperationStatus:
    """Update every study of the operation, from its checkpoint on."""
    operation = run.operation
    partition = Partition.objects.get(pk=cast(int, operation.partition_id))  # an update has a partition
    uids: list[str] = operation.parameters["studyInstanceUids"]
    change = changeset_parse(operation.parameters["changeDataset"])
    start = int((operation.checkpoint or {}).get("index", 0))
    if start == 0 and operation.results is None:
        run.progress(percent_complete=0, checkpoint={"index": 0}, results=_results(operation))
    for index in range(start, len(uids)):
        try:
            _study_update(
                run=run, partition=partition, study_uid=uids[index], index=index, total=len(uids),
                change=change,
            )
        except (LeaseLost, CheckpointMismatch):
            raise
        except Exception:  # the reservation failed: nothing of this attempt was written
            _study_failed(run=run, partition=partition, study_uid=uids[index], index=index, total=len(uids), pending=[])
    final = Operation.objects.get(pk=operation.pk)
    return OperationStatus.FAILED if _results(final)["studyFailed"] else OperationStatus.SUCCEEDED
