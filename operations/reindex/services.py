"""Adding extended query tags and reindexing what is already stored, as an operation.

`reindex_create` answers `POST extendedquerytags`: it validates the tags, then in one
transaction creates the reindex operation and the tags (status adding); the task is enqueued
when that commits. The partial unique constraint `one_active_reindex` refuses a second
unfinished reindex (409 with its Location), as Microsoft's server does.

`reindex_execute` runs under the operation's lease (`operations.runner`). Each batch is one
transaction that locks the operation row (only the lease holder gets further), indexes the
next keyset page of instances (`studies.eqt.reindex`) and advances the checkpoint, so a
worker killed at any point leaves the operation where its last batch committed. The run
ends once no instance is left after its cursor, no instance it saw being stored is still
being stored, and every process's tag cache holds the new tags; then the tags are ready.
"""

from __future__ import annotations

import time
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from dicomsvc.errors import ReindexOperationActive
from operations.models import ACTIVE_STATUSES, Operation, OperationStatus, OperationType
from operations.selectors import operation_active_get
from operations.services import OperationRun, operation_create
from operations.wire import operation_url
from studies.eqt.models import ExtendedQueryTag
from studies.eqt.reindex import (
    reindex_batch,
    reindex_finish,
    reindex_pending,
    reindex_settled_at,
    reindex_tags,
    reindex_total,
)
from studies.eqt.services import tag_delete, tags_add, tags_validate

# How long a run that waits (for stores in flight, or for the tag caches) sleeps between looks.
WAIT_SECONDS = 0.5


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


def reindex_execute(run: OperationRun) -> OperationStatus:
    """Index every stored instance for the operation's tags, from its checkpoint on."""
    operation = run.operation
    tags = reindex_tags(keys=operation.parameters.get("tagKeys", []))
    if not tags:
        return OperationStatus.SUCCEEDED  # deleted meanwhile (after a failed run): nothing to make ready
    checkpoint = dict(operation.checkpoint or {})
    if "total" not in checkpoint:
        checkpoint = {"after": 0, "done": 0, "total": reindex_total(), "creating": []}
        run.progress(percent_complete=0, checkpoint=checkpoint)
    settled_at = reindex_settled_at(tags=tags)
    limit = settings.DICOM_REINDEX_BATCH_SIZE
    while True:
        with transaction.atomic():
            run.lock()
            batch = reindex_batch(tags=tags, after=checkpoint["after"], limit=limit)
            still = reindex_pending(tags=tags, watermarks=checkpoint["creating"])
            checkpoint = {
                "after": batch.last,
                "done": checkpoint["done"] + batch.indexed + len(checkpoint["creating"]) - len(still),
                "total": checkpoint["total"],
                "creating": sorted({*still, *batch.creating}),
            }
            finished = not batch.indexed and not batch.creating  # nothing left after the cursor
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
