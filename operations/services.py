"""Operation lifecycle: rows first, then jobs; compare-and-swap state changes; one runner at a time.

A handler (bulk update, export, ...) registers for its type. The runner owns start,
completion and error capture, so a handler only does its work and reports progress.

Exactly one runner works on an operation at a time. Starting it (notStarted -> running)
takes a *lease*: a random token stored on the row, with a heartbeat the runner renews while
it works. Every write the runner makes is conditioned on still holding the lease. Another
delivery of the task (Celery redelivers unacknowledged tasks; `operations_resume` and worker
start-up re-enqueue active operations) takes the operation over only once the heartbeat is
older than `DICOM_OPERATION_LEASE_SECONDS`, i.e. when the previous runner is gone; until
then it only looks again later. A runner that was presumed dead but wakes up finds its
lease gone and stops without writing anything.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from operations.models import ACTIVE_STATUSES, Operation, OperationStatus, OperationType
from partitions.models import Partition

logger = logging.getLogger(__name__)


class LeaseLost(Exception):
    """Another runner has taken the operation over (or it was finished): stop, write nothing."""


@dataclass
class OperationRun:
    """What a handler gets: the operation as read at start, and the lease it runs under."""

    operation: Operation
    lease: uuid.UUID
    _last_beat: float = field(default_factory=time.monotonic)

    def heartbeat(self, *, force: bool = False) -> None:
        """Renew the lease (at most every few seconds unless forced); LeaseLost if it is gone."""
        if not force and time.monotonic() - self._last_beat < _beat_interval():
            return
        renewed = Operation.objects.filter(
            pk=self.operation.pk, status=OperationStatus.RUNNING, lease=self.lease
        ).update(heartbeat_time=timezone.now())
        if renewed != 1:
            raise LeaseLost()
        self._last_beat = time.monotonic()

    def lock(self) -> Operation:
        """Inside a transaction: lock the row and return it; LeaseLost unless this run still owns it."""
        operation = (
            Operation.objects.select_for_update()
            .filter(pk=self.operation.pk, status=OperationStatus.RUNNING, lease=self.lease)
            .first()
        )
        if operation is None:
            raise LeaseLost()
        return operation

    def progress(
        self,
        *,
        percent_complete: int | None,
        checkpoint: dict[str, Any] | None = None,
        results: dict[str, Any] | None = None,
    ) -> None:
        """Record progress (usually inside the transaction of the work it records)."""
        now = timezone.now()
        fields: dict[str, Any] = {"percent_complete": percent_complete, "last_updated_time": now, "heartbeat_time": now}
        if checkpoint is not None:
            fields["checkpoint"] = checkpoint
        if results is not None:
            fields["results"] = results
        updated = Operation.objects.filter(
            pk=self.operation.pk, status=OperationStatus.RUNNING, lease=self.lease
        ).update(**fields)
        if updated != 1:
            raise LeaseLost()
        self._last_beat = time.monotonic()


Handler = Callable[[OperationRun], OperationStatus]
_handlers: dict[str, Handler] = {}


def _beat_interval() -> float:
    return min(5.0, settings.DICOM_OPERATION_LEASE_SECONDS / 3)


def operation_handler(type: OperationType) -> Callable[[Handler], Handler]:
    """Register the function that performs operations of `type`; it returns the final status."""

    def register(handler: Handler) -> Handler:
        _handlers[type] = handler
        return handler

    return register


def _enqueue(operation_id: str) -> None:
    from operations.tasks import operation_execute

    operation_execute.delay(operation_id)


def operation_create(
    *, type: OperationType, partition: Partition | None, parameters: dict[str, Any]
) -> Operation:
    """Persist the operation; its task is enqueued only once the row is committed.

    Raises IntegrityError when a constraint refuses the row (one active update). If the
    broker cannot take the task, the failure is logged and the operation stays notStarted
    until `manage.py operations_resume` or the next worker start enqueues it again.
    """
    operation = Operation.objects.create(
        type=type, partition=partition, parameters=parameters, percent_complete=0, results=None
    )
    transaction.on_commit(partial(_enqueue, str(operation.pk)), robust=True)
    return operation


@dataclass(frozen=True)
class RunResult:
    """`status` when this call finished the operation; `retry_in` seconds when another runner holds it."""

    status: OperationStatus | None = None
    retry_in: float | None = None


def _acquire(operation_id: Any) -> tuple[Operation | None, uuid.UUID | None, float | None]:
    """Take the lease: start a notStarted operation or take over an abandoned running one."""
    lease = uuid.uuid4()
    now = timezone.now()
    started = Operation.objects.filter(pk=operation_id, status=OperationStatus.NOT_STARTED).update(
        status=OperationStatus.RUNNING, lease=lease, heartbeat_time=now, last_updated_time=now
    )
    operation = Operation.objects.filter(pk=operation_id).first()
    if started:
        return operation, lease, None
    if operation is None or operation.status != OperationStatus.RUNNING:
        return None, None, None  # unknown, or finished by an earlier delivery
    lease_seconds = settings.DICOM_OPERATION_LEASE_SECONDS
    beat = operation.heartbeat_time or operation.last_updated_time
    age = (now - beat).total_seconds()
    if age < lease_seconds:
        return None, None, lease_seconds - age + 1  # a live runner holds it
    taken = Operation.objects.filter(
        pk=operation_id,
        status=OperationStatus.RUNNING,
        lease=operation.lease,
        heartbeat_time=operation.heartbeat_time,
    ).update(lease=lease, heartbeat_time=now)
    if not taken:
        return None, None, float(lease_seconds)  # another delivery took it first: watch that one
    logger.warning("operation %s: taking over from a runner silent for %.0f s", operation.pk, age)
    operation.refresh_from_db()
    return operation, lease, None


def operation_run(*, operation_id: Any) -> RunResult:
    """Run an operation to its end. Safe to call twice, concurrently, or after a crash.

    Returns `retry_in` when another runner holds a fresh lease: the caller should look again
    after that many seconds, so an operation whose runner dies is always taken over.
    """
    operation, lease, retry_in = _acquire(operation_id)
    if operation is None or lease is None:
        return RunResult(retry_in=retry_in)
    run = OperationRun(operation=operation, lease=lease)
    handler = _handlers.get(operation.type)
    if handler is None:
        _finish(run, OperationStatus.FAILED, error=f"No handler for operation type '{operation.type}'.")
        return RunResult(status=OperationStatus.FAILED)
    try:
        status = handler(run)
    except LeaseLost:
        logger.warning("operation %s: lease lost, another runner continues it", operation.pk)
        return RunResult()
    except Exception as exc:
        logger.exception("operation %s failed", operation.pk)
        _finish(run, OperationStatus.FAILED, error=str(exc) or exc.__class__.__name__)
        return RunResult(status=OperationStatus.FAILED)
    _finish(run, status)
    return RunResult(status=status)


def _finish(run: OperationRun, status: OperationStatus, error: str | None = None) -> None:
    now = timezone.now()
    fields: dict[str, Any] = {"status": status, "last_updated_time": now, "heartbeat_time": now, "lease": None}
    if status in (OperationStatus.SUCCEEDED, OperationStatus.FAILED):
        fields["percent_complete"] = 100
    if error is not None:
        fields["errors"] = [*run.operation.errors, error]
    Operation.objects.filter(pk=run.operation.pk, status=OperationStatus.RUNNING, lease=run.lease).update(**fields)


def operations_resume(*, older_than: dt.timedelta | None = None) -> list[Operation]:
    """Enqueue every unfinished operation again; the task decides whether to take it over.

    Recovers operations whose enqueue failed (broker down at commit) and operations whose
    worker died. A live runner keeps its operation: the extra task only watches it.
    """
    queryset = Operation.objects.filter(status__in=ACTIVE_STATUSES).order_by("created_time")
    if older_than is not None:
        queryset = queryset.filter(last_updated_time__lt=timezone.now() - older_than)
    operations = list(queryset)
    for operation in operations:
        _enqueue(str(operation.pk))
    return operations
