"""Reads of operations."""

from __future__ import annotations

import uuid

from dicomsvc.errors import BadRequest, NotFound
from operations.models import ACTIVE_STATUSES, Operation, OperationType


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
