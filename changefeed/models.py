"""The change feed: one row per create, update or delete of an instance version."""

from __future__ import annotations

from django.db import models

from partitions.models import Partition


class ChangeAction(models.IntegerChoices):
    CREATE = 0, "create"
    DELETE = 1, "delete"
    UPDATE = 2, "update"


class ChangeState(models.TextChoices):
    """Derived, never stored: see `changefeed.selectors.changefeed_queryset`."""

    CURRENT = "current"
    REPLACED = "replaced"
    DELETED = "deleted"


class ChangeFeedEntry(models.Model):
    """A change to one instance.

    `watermark` is the version the entry describes. The entry's state (current, replaced,
    deleted) is derived by comparing it with the instance row that exists now, so nothing
    is stored twice and older entries never need rewriting.
    """

    sequence = models.BigAutoField(primary_key=True)
    # No index of its own: (timestamp, sequence) below serves every timestamp query and MAX(timestamp).
    timestamp = models.DateTimeField()
    action = models.SmallIntegerField(choices=ChangeAction.choices)
    partition = models.ForeignKey(Partition, on_delete=models.PROTECT, related_name="+")
    study_instance_uid = models.CharField(max_length=64)
    series_instance_uid = models.CharField(max_length=64)
    sop_instance_uid = models.CharField(max_length=64)
    watermark = models.BigIntegerField()
    original_watermark = models.BigIntegerField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "change feed entries"
        indexes = [
            models.Index(
                fields=["partition", "study_instance_uid", "series_instance_uid", "sop_instance_uid"],
                name="changefeed_uids",
            ),
            # Admin search by series or SOP UID (the study UID uses changefeed_uids).
            models.Index(fields=["partition", "series_instance_uid"], name="changefeed_series_uid"),
            models.Index(fields=["partition", "sop_instance_uid"], name="changefeed_sop_uid"),
            models.Index(fields=["timestamp", "sequence"], name="changefeed_time_seq"),
        ]

    def __str__(self) -> str:
        return f"{self.sequence} {self.get_action_display()} {self.sop_instance_uid}"
