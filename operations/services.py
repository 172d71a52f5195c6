"""Operation lifecycle: rows first, then jobs; compare-and-swap state changes; one runner at a time.

This module creates operations and holds the lease a handler runs under;
`operations.runner` starts, finishes and captures the errors of a run, calling the handler
that `operations.handlers.HANDLERS` names for the type, so a handler (bulk update, export)
only does its work and reports progress.

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

    def heartbeat(self) -> None:
        """Renew the lease (at most every few seconds); LeaseLost if it is gone."""
        if time.monotonic() - self._last_beat < _beat_interval():
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


def _beat_interval() -> float:
    return min(5.0, settings.DICOM_OPERATION_LEASE_SECONDS / 3)


def _enqueue(operation_id: str) -> None:
    """Hand the operation's task to the broker; a broker that refuses it is logged, never raised.

    It runs after the commit, where the row is what counts: the operation stays notStarted until
    `operations_resume` or a worker's start enqueues it again. (Django's own `robust` handling
    of on_commit callbacks fails on a `functools.partial`: it formats the callback's
    `__qualname__`, which a partial lacks, and the request answered 500.)
    """
    # Imported here: the task calls the runner, whose handler table imports the services
    # that create operations through this module.
    from operations.tasks import operation_execute

    # Caught here rather than by on_commit(robust=True), whose log line reads the callback's
    # __qualname__, which a functools.partial does not have (the request then failed with 500).
    try:
        operation_execute.delay(operation_id)
    except Exception:
        logger.exception("operation %s: could not enqueue its task; operations_resume will", operation_id)


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
    transaction.on_commit(partial(_enqueue, str(operation.pk)))
    return operation


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
