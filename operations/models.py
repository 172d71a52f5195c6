"""Long-running operations (bulk update, export, reindex) executed by Celery workers."""

from __future__ import annotations

import uuid

from django.db import models
from django.db.models import Q

from partitions.models import Partition


class OperationType(models.TextChoices):
    UPDATE = "update"
    EXPORT = "export"
    REINDEX = "reindex"


class OperationStatus(models.TextChoices):
    NOT_STARTED = "notStarted"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELED = "canceled"


ACTIVE_STATUSES = (OperationStatus.NOT_STARTED, OperationStatus.RUNNING)


class Operation(models.Model):
    """A persisted job: the row is committed before its task is enqueued.

    `checkpoint` lets a redelivered task resume where a killed worker stopped; `lease`
    makes sure only one worker runs the operation at a time.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    type = models.CharField(max_length=16, choices=OperationType.choices)
    status = models.CharField(max_length=16, choices=OperationStatus.choices, default=OperationStatus.NOT_STARTED)
    partition = models.ForeignKey(Partition, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    percent_complete = models.IntegerField(null=True, blank=True)
    parameters = models.JSONField(default=dict, blank=True)
    checkpoint = models.JSONField(default=dict, blank=True)
    results = models.JSONField(null=True, blank=True)
    errors = models.JSONField(default=list, blank=True)
    resources = models.JSONField(null=True, blank=True)
    created_time = models.DateTimeField(auto_now_add=True)
    last_updated_time = models.DateTimeField(auto_now=True)
    # The runner that owns a running operation holds `lease` and renews `heartbeat_time`;
    # another worker may take the operation over only once the heartbeat is stale.
    lease = models.UUIDField(null=True, blank=True, editable=False)
    heartbeat_time = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["-created_time"]
        indexes = [models.Index(fields=["type", "status"], name="operation_type_status")]
        constraints = [
            # At most one unfinished bulk update per server, as in Microsoft's server.
            models.UniqueConstraint(
                fields=["type"],
                condition=Q(type="update", status__in=["notStarted", "running"]),
                name="one_active_update",
            ),
            # At most one unfinished reindex, as in Microsoft's server.
            models.UniqueConstraint(
                fields=["type"],
                condition=Q(type="reindex", status__in=["notStarted", "running"]),
                name="one_active_reindex",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.type} {self.id} ({self.status})"


class OperationSlice(models.Model):
    """A key range of an operation's work that any worker may take (the reindex splits its
    instances by watermark into slices, so several workers can index at once).

    A worker holds a slice by its row lock (`FOR UPDATE SKIP LOCKED`) for one batch's
    transaction, which also advances `after`: a worker that dies loses nothing but its
    uncommitted batch, and the slice is free for the next one.
    """

    operation = models.ForeignKey(Operation, on_delete=models.CASCADE, related_name="slices")
    index = models.IntegerField()
    # The last key done, and the last key of the slice.
    after = models.BigIntegerField()
    end = models.BigIntegerField()
    done = models.IntegerField(default=0)
    finished = models.BooleanField(default=False)
    # Keys seen still being written, for the runner to come back to.
    pending = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["operation", "index"]
        constraints = [models.UniqueConstraint(fields=["operation", "index"], name="operation_slice_index")]

    def __str__(self) -> str:
        return f"{self.operation_id} #{self.index}"
