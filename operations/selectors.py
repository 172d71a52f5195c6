"""Reads of operations."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from django.utils import timezone

from dicomsvc.errors import BadRequest, NotFound
from operations.export.destinations import error_log_tail
from operations.models import ACTIVE_STATUSES, Operation, OperationStatus, OperationType
from studies.models import Study

# Lines of an export's errors.log the admin shows.
ERROR_LOG_LINES = 200


def operation_id_parse(*, text: str) -> uuid.UUID:
    try:
        return uuid.UUID(text)
    except ValueError:
        raise BadRequest(f"The operation ID '{text}' is not a valid GUID.") from None


def operation_get(*, operation_id: uuid.UUID) -> Operation:
    try:
        return Operation.objects.get(pk=operation_id)
    except Operation.DoesNotExist:
        raise NotFound(f"The operation '{operation_id.hex}' cannot be found.") from None


def operation_active_get(*, type: OperationType) -> Operation | None:
    return Operation.objects.filter(type=type, status__in=ACTIVE_STATUSES).order_by("created_time").first()


def operations_active_list(*, limit: int) -> list[Operation]:
    """Operations not finished yet, oldest first (the dashboard)."""
    return list(
        Operation.objects.select_related("partition").filter(status__in=ACTIVE_STATUSES).order_by("created_time")[:limit]
    )


def operation_failure_reason(*, operation: Operation) -> str:
    """The first reason a failed operation gives (the runner's, else the first per-study error)."""
    errors = [*(operation.errors or []), *((operation.results or {}).get("errors") or [])]
    return str(errors[0]) if errors else ""


def operations_failed_recently_list(*, within: dt.timedelta, limit: int) -> list[tuple[Operation, str]]:
    """Operations that failed within `within`, newest first, each with its reason (the dashboard)."""
    operations = (
        Operation.objects.select_related("partition")
        .filter(status=OperationStatus.FAILED, last_updated_time__gte=timezone.now() - within)
        .order_by("-last_updated_time")[:limit]
    )
    return [(operation, operation_failure_reason(operation=operation)) for operation in operations]


def operation_error_lines(*, operation: Operation) -> list[str]:
    """Why an operation (partly) failed: the runner's errors, the bulk update's per-study
    errors, and the end of an export's errors.log when the server can read it."""
    results: dict[str, Any] = operation.results or {}
    lines = [str(error) for error in operation.errors or []]
    lines += [str(error) for error in results.get("errors") or [] if str(error) not in lines]
    href = results.get("errorHref")
    if operation.type == OperationType.EXPORT and isinstance(href, str):
        lines += error_log_tail(href=href, limit=ERROR_LOG_LINES) or []
    return lines


def operation_study_links(*, operation: Operation) -> dict[str, int]:
    """Study UID -> study row id for the studies an operation's parameters name (in its partition)."""
    parameters: dict[str, Any] = operation.parameters or {}
    uids = {str(uid) for uid in parameters.get("studyInstanceUids") or []}
    uids |= {str(identifier).split("/")[0] for identifier in parameters.get("identifiers") or []}
    if not uids or operation.partition_id is None:
        return {}
    rows = Study.objects.filter(partition_id=operation.partition_id, study_instance_uid__in=sorted(uids))
    return dict(rows.values_list("study_instance_uid", "pk"))


def operation_for_change(*, partition_id: int, study_uid: str, timestamp: dt.datetime) -> Operation | None:
    """The bulk update that wrote a change-feed `update` entry: one update runs at a time, so
    it is the one of the entry's partition naming its study and running at the entry's time."""
    candidates = Operation.objects.filter(
        type=OperationType.UPDATE, partition_id=partition_id, created_time__lte=timestamp,
        last_updated_time__gte=timestamp,
    ).order_by("-created_time")[:20]
    for operation in candidates:
        if study_uid in (operation.parameters or {}).get("studyInstanceUids", []):
            return operation
    return None
