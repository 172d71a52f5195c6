"""Adding extended query tags and reindexing what is already stored, as an operation.

`reindex_create` answers `POST extendedquerytags`: it validates the tags, then in one
transaction creates the reindex operation and the tags (status adding); the task is enqueued
when that commits. The partial unique constraint `one_active_reindex` refuses a second
unfinished reindex (409 with its Location), as Microsoft's server does.

`reindex_execute` runs under the operation's lease (`operations.runner`). It splits the
watermarks stored at its start into slices (`OperationSlice`) and enqueues
`DICOM_REINDEX_HELPERS` helper tasks, so other workers index slices beside it. A batch is one
transaction: the slice's row lock (`SKIP LOCKED`: a slice is worked by one worker at a time),
the next keyset page of the slice (`studies.eqt.reindex`), its values and errors, and the
slice's progress; so a worker killed at any point loses only its uncommitted batch, and the
slice is free for the next worker. Once every slice is finished, the runner alone indexes what
was stored since it started, with the same batches under its lease and checkpoint. It ends
once no instance is left after its cursor, no instance it saw being stored is still being
stored, and every process's tag cache holds the new tags; then the tags are ready.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from functools import partial
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Sum
from django.utils import timezone

from dicomsvc.errors import ReindexOperationActive
from operations.models import ACTIVE_STATUSES, Operation, OperationSlice, OperationStatus, OperationType
from operations.selectors import operation_active_get
from operations.services import LeaseLost, OperationRun, operation_create
from operations.wire import operation_url
from studies.eqt.models import ExtendedQueryTag
from studies.eqt.reindex import (
    reindex_batch,
    reindex_bounds,
    reindex_finish,
    reindex_pending,
    reindex_settled_at,
    reindex_tags,
    reindex_total,
)
from studies.eqt.services import tag_delete, tags_add, tags_validate
from studies.eqt.tags import TagDef

logger = logging.getLogger(__name__)

# How long a run that waits (for stores in flight, or for the tag caches) sleeps between looks.
WAIT_SECONDS = 0.5
# Slices: at most this many, each of at least this many batches.
MAX_SLICES = 64
SLICE_BATCHES = 4


def tag_url(*, version_segment: str, path: str) -> str:
    return f"{settings.DICOM_PUBLIC_BASE_URL}/v{version_segment}/extendedquerytags/{path}"


def _active_conflict(version_segment: str) -> ReindexOperationActive | None:
    active = operation_active_get(type=OperationType.REINDEX)
    if active is None:
        return None
    return ReindexOperationActive(
        active.pk.hex, operation_url(version_segment=version_segment, operation_id=active.pk)
    )


def reindex_create(*, body: Any, version_segment: str) -> tuple[Operation, list[ExtendedQueryTag]]:
    """Validate an add request, add the tags and create their reindex (enqueued on commit)."""
    entries = tags_validate(body=body)
    conflict = _active_conflict(version_segment)
    if conflict is not None:
        raise conflict
    try:
        with transaction.atomic():
            operation = operation_create(type=OperationType.REINDEX, partition=None, parameters={})
            tags = tags_add(entries=entries, operation_id=operation.pk)
            operation.parameters = {"tagKeys": [tag.pk for tag in tags]}
            operation.resources = [tag_url(version_segment=version_segment, path=tag.path) for tag in tags]
            operation.save(update_fields=["parameters", "resources"])
    except IntegrityError:
        conflict = _active_conflict(version_segment)
        if conflict is None:
            raise
        raise conflict from None
    return operation, tags


def operation_processing(operation_id: Any) -> bool:
    """Whether the operation is still running or waiting to run."""
    return Operation.objects.filter(pk=operation_id, status__in=ACTIVE_STATUSES).exists()


def extended_query_tag_delete(*, path: str) -> None:
    """DELETE extendedquerytags/{path}: refused while the tag's reindex is active."""
    tag_delete(path=path, processing=operation_processing)


def _percent(done: int, total: int) -> int:
    return 99 if total == 0 else min(99, done * 100 // total)


# --- Run ----------------------------------------------------------------------------------------


def _slices_create(operation: Operation, *, first: int, last: int, total: int, limit: int) -> None:
    """Split the watermarks stored at the start into ranges any worker may take."""
    count = max(1, min(MAX_SLICES, total // (SLICE_BATCHES * limit)))
    step = max(1, -(-(last - first + 1) // count))
    OperationSlice.objects.bulk_create(
        OperationSlice(operation=operation, index=index, after=low - 1, end=min(last, low + step - 1))
        for index, low in enumerate(range(first, last + 1, step))
    )


def _slice_batch(*, operation_id: Any, tags: tuple[TagDef, ...], check: Callable[[], object]) -> bool:
    """Index one batch of a slice no other worker holds; False when none is left to take.

    One transaction: `check` (the runner: its lease; a helper: the operation still runs), the
    slice's row lock, the batch's values and errors, the slice's progress.
    """
    limit = settings.DICOM_REINDEX_BATCH_SIZE
    with transaction.atomic():
        check()
        piece = (
            OperationSlice.objects.select_for_update(skip_locked=True)
            .filter(operation_id=operation_id, finished=False)
            .order_by("index")
            .first()
        )
        if piece is None:
            return False
        batch = reindex_batch(tags=tags, after=piece.after, end=piece.end, limit=limit)
        piece.after = batch.last
        piece.done += batch.indexed
        piece.pending = [*piece.pending, *batch.creating]
        piece.finished = batch.read < limit
        piece.save(update_fields=["after", "done", "pending", "finished"])
    return True


def _slices_done(operation_id: Any) -> int:
    return int(OperationSlice.objects.filter(operation_id=operation_id).aggregate(n=Sum("done"))["n"] or 0)


def _slices_run(run: OperationRun, tags: tuple[TagDef, ...], total: int) -> list[int]:
    """Index slices until every one is finished (helpers may hold some); the rows seen being stored."""
    operation_id = run.operation.pk
    while True:
        while _slice_batch(operation_id=operation_id, tags=tags, check=run.lock):
            run.progress(percent_complete=_percent(_slices_done(operation_id), total))
        if not OperationSlice.objects.filter(operation_id=operation_id, finished=False).exists():
            break
        time.sleep(WAIT_SECONDS)  # a helper holds the last slices; take over any whose helper dies
        run.heartbeat()
    pending = OperationSlice.objects.filter(operation_id=operation_id).values_list("pending", flat=True)
    return sorted({watermark for values in pending for watermark in values})


def reindex_help(operation_id: Any) -> None:
    """A helper task: index slices of a running reindex beside its runner, until none is left."""
    operation = Operation.objects.filter(pk=operation_id, status=OperationStatus.RUNNING).first()
    if operation is None:
        return
    tags = reindex_tags(keys=operation.parameters.get("tagKeys", []))

    def running() -> None:
        if not Operation.objects.filter(pk=operation_id, status=OperationStatus.RUNNING).exists():
            raise LeaseLost()

    try:
        while _slice_batch(operation_id=operation_id, tags=tags, check=running):
            pass
    except LeaseLost:
        return


def _enqueue_helpers(operation_id: str) -> None:
    from operations.tasks import operation_help  # the task module imports the handler table

    try:
        for _ in range(settings.DICOM_REINDEX_HELPERS):
            operation_help.delay(operation_id)
    except Exception:  # helpers only speed the run up: the runner does every slice left to it
        logger.exception("reindex %s: could not enqueue helper tasks", operation_id)


def reindex_execute(run: OperationRun) -> OperationStatus:
    """Index every stored instance for the operation's tags, from its checkpoint on.

    First the instances stored at the start, in slices that helper tasks (other workers) take
    too; then, alone, whatever was stored since and the rows it saw being stored.
    """
    operation = run.operation
    tags = reindex_tags(keys=operation.parameters.get("tagKeys", []))
    if not tags:
        return OperationStatus.SUCCEEDED  # deleted meanwhile (after a failed run): nothing to make ready
    checkpoint = dict(operation.checkpoint or {})
    limit = settings.DICOM_REINDEX_BATCH_SIZE
    if "total" not in checkpoint:
        first, last = reindex_bounds()
        total = reindex_total()
        with transaction.atomic():
            run.lock()
            _slices_create(operation, first=first, last=last, total=total, limit=limit)
            checkpoint = {"total": total, "after": last, "done": 0, "creating": [], "sliced": False}
            run.progress(percent_complete=0, checkpoint=checkpoint)
            transaction.on_commit(partial(_enqueue_helpers, operation.pk.hex))
    if not checkpoint["sliced"]:
        creating = _slices_run(run, tags, checkpoint["total"])
        checkpoint |= {"done": _slices_done(operation.pk), "creating": creating, "sliced": True}
        run.progress(percent_complete=_percent(checkpoint["done"], checkpoint["total"]), checkpoint=checkpoint)
    settled_at = reindex_settled_at(tags=tags)
    while True:
        with transaction.atomic():
            run.lock()
            batch = reindex_batch(tags=tags, after=checkpoint["after"], limit=limit)
            still = reindex_pending(tags=tags, watermarks=checkpoint["creating"])
            checkpoint = {
                **checkpoint,
                "after": batch.last,
                "done": checkpoint["done"] + batch.indexed + len(checkpoint["creating"]) - len(still),
                "creating": sorted({*still, *batch.creating}),
            }
            finished = not batch.read  # nothing left after the cursor
            done = finished and not checkpoint["creating"] and timezone.now() >= settled_at
            if done:
                reindex_finish(tags=tags)
            run.progress(
                percent_complete=100 if done else _percent(checkpoint["done"], checkpoint["total"]),
                checkpoint=checkpoint,
            )
        if done:
            return OperationStatus.SUCCEEDED
        if finished:
            time.sleep(WAIT_SECONDS)  # stores in flight, or tag caches of other processes
            run.heartbeat()
