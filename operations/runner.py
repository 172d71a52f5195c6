"""The runner: takes an operation's lease, calls its handler, records how it ended.

Starting (notStarted -> running), taking over an abandoned run and finishing are
compare-and-swap updates of the row; the handler's own writes go through the lease
(`operations.services.OperationRun`), see that module.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.utils import timezone

from operations.handlers import HANDLERS
from operations.models import Operation, OperationStatus
from operations.services import LeaseLost, OperationRun

logger = logging.getLogger(__name__)


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
    handler = HANDLERS.get(operation.type)
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
    # A failed run keeps the progress it reached ("failed at 40 %"); a bulk update that
    # processed every study and reports failures per study has reached 100 by itself.
    if status == OperationStatus.SUCCEEDED:
        fields["percent_complete"] = 100
    if error is not None:
        fields["errors"] = [*run.operation.errors, error]
    Operation.objects.filter(pk=run.operation.pk, status=OperationStatus.RUNNING, lease=run.lease).update(**fields)
