"""Celery tasks: thin interfaces that take ids and call one service."""

from __future__ import annotations

import logging
from typing import Any

from celery import Task, shared_task
from celery.signals import worker_ready

from operations.handlers import HELPERS
from operations.models import Operation
from operations.runner import operation_run
from operations.services import operations_resume

logger = logging.getLogger(__name__)


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True, ignore_result=True, max_retries=None)
def operation_execute(self: Task, operation_id: str) -> None:
    """Run the operation; while another live worker runs it, look again once its lease could expire.

    The message is acknowledged only when this returns, so a worker killed mid-operation
    leaves it to be redelivered (after the broker's visibility timeout); the lease decides
    who continues. Looking again keeps someone watching an operation whose runner may die.
    """
    result = operation_run(operation_id=operation_id)
    if result.retry_in is not None:
        raise self.retry(countdown=result.retry_in)


@shared_task(acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def operation_help(operation_id: str) -> None:
    """Do a share of a running operation's work beside its runner (the reindex's slices).

    Redelivered if the worker dies; it then finds whatever is left, or nothing.
    """
    operation_type = Operation.objects.filter(pk=operation_id).values_list("type", flat=True).first()
    helper = HELPERS.get(operation_type or "")
    if helper is not None:
        helper(operation_id)


@worker_ready.connect
def _resume_on_worker_start(**kwargs: Any) -> None:
    """A restarted worker picks up operations its predecessor was running when it died."""
    try:
        resumed = operations_resume()
    except Exception:  # never keep a worker from starting
        logger.exception("could not re-enqueue unfinished operations")
        return
    for operation in resumed:
        logger.info("re-enqueued unfinished operation %s (%s, %s)", operation.pk.hex, operation.type, operation.status)
