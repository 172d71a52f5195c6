"""Celery tasks: thin interfaces that take ids and call one service."""

from __future__ import annotations

from celery import shared_task

from operations.services import operation_run


@shared_task(acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def operation_execute(operation_id: str) -> None:
    operation_run(operation_id=operation_id)
