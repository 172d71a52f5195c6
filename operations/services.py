"""Operation lifecycle: rows first, then jobs; compare-and-swap state changes.

A handler (bulk update, export, ...) registers for its type. The runner owns start,
progress, completion and error capture, so a handler only does its work and reports
progress; a redelivered task finds the row already terminal and does nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import partial
from typing import Any

from django.db import transaction
from django.utils import timezone

from operations.models import ACTIVE_STATUSES, Operation, OperationStatus, OperationType
from partitions.models import Partition

logger = logging.getLogger(__name__)

Handler = Callable[[Operation], OperationStatus]
_handlers: dict[str, Handler] = {}


def operation_handler(type: OperationType) -> Callable[[Handler], Handler]:
    """Register the function that performs operations of `type`; it returns the final status."""

    def register(handler: Handler) -> Handler:
        _handlers[type] = handler
        return handler

    return register


def operation_create(
    *, type: OperationType, partition: Partition | None, parameters: dict[str, Any]
) -> Operation:
    """Persist the operation; its task is enqueued only once the row is committed."""
    from operations.tasks import operation_execute

    operation = Operation.objects.create(
        type=type, partition=partition, parameters=parameters, percent_complete=0, results=None
    )
    transaction.on_commit(partial(operation_execute.delay, str(operation.pk)))
    return operation


def operation_progress(
    *, operation_id: Any, percent_complete: int | None, checkpoint: dict[str, Any] | None = None,
    results: dict[str, Any] | None = None,
) -> None:
    fields: dict[str, Any] = {"percent_complete": percent_complete, "last_updated_time": timezone.now()}
    if checkpoint is not None:
        fields["checkpoint"] = checkpoint
    if results is not None:
        fields["results"] = results
    Operation.objects.filter(pk=operation_id, status=OperationStatus.RUNNING).update(**fields)


def operation_run(*, operation_id: Any) -> OperationStatus | None:
    """Run an operation to its end. Safe to call twice or concurrently with itself.

    notStarted -> running is a compare-and-swap; a task redelivered after a worker died
    finds the row `running` and resumes from its checkpoint (handlers are idempotent).
    """
    Operation.objects.filter(pk=operation_id, status=OperationStatus.NOT_STARTED).update(
        status=OperationStatus.RUNNING, last_updated_time=timezone.now()
    )
    operation = Operation.objects.filter(pk=operation_id).first()
    if operation is None or operation.status != OperationStatus.RUNNING:
        return None  # unknown, or already finished by an earlier delivery
    handler = _handlers.get(operation.type)
    if handler is None:
        _finish(operation, OperationStatus.FAILED, error=f"No handler for operation type '{operation.type}'.")
        return OperationStatus.FAILED
    try:
        status = handler(operation)
    except Exception as exc:
        logger.exception("operation %s failed", operation_id)
        _finish(operation, OperationStatus.FAILED, error=str(exc) or exc.__class__.__name__)
        return OperationStatus.FAILED
    _finish(operation, status)
    return status


def _finish(operation: Operation, status: OperationStatus, error: str | None = None) -> None:
    fields: dict[str, Any] = {"status": status, "last_updated_time": timezone.now()}
    if status == OperationStatus.SUCCEEDED:
        fields["percent_complete"] = 100
    if error is not None:
        fields["errors"] = [*operation.errors, error]
    Operation.objects.filter(pk=operation.pk, status__in=ACTIVE_STATUSES).update(**fields)
