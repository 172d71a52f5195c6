"""Extended query tags (global definitions) and their values and errors (per partition).

A tag has one level. Its value rows are keyed by the row of that level: a study-level value
sets `study` only, a series-level one `series` only, an instance-level one `instance` only,
so each unique constraint below holds one level's rows (NULLs never conflict) and is also
the index the foreign key's cascade and the QIDO look-up use. Study, series and instance
rows belong to one partition, so values are per partition; `partition` is repeated on the
value row for the search index `(tag, partition, value)`.
"""

from __future__ import annotations

from django.db import models
from django.db.models.functions import Coalesce

from partitions.models import Partition
from studies.models import Instance, Series, Study

# Wide enough for a folded three-group person name (`studies.models.PERSON_NAME_LENGTH`).
TEXT_VALUE_LENGTH = 330


class TagLevel(models.TextChoices):
    STUDY = "study"
    SERIES = "series"
    INSTANCE = "instance"


class TagStatus(models.TextChoices):
    ADDING = "adding"
    READY = "ready"
    DELETING = "deleting"


class QueryStatus(models.TextChoices):
    ENABLED = "enabled"
    DISABLED = "disabled"


class ExtendedQueryTag(models.Model):
    """An attribute made searchable at a level. `path` is the tag as 8 upper-case hex digits."""

    path = models.CharField(max_length=8, unique=True)
    vr = models.CharField(max_length=2)
    private_creator = models.CharField(max_length=64, blank=True, default="")
    level = models.CharField(max_length=8, choices=TagLevel.choices)
    status = models.CharField(max_length=8, choices=TagStatus.choices, default=TagStatus.ADDING)
    query_status = models.CharField(max_length=8, choices=QueryStatus.choices, default=QueryStatus.ENABLED)
    error_count = models.IntegerField(default=0)
    # The reindex operation that is making (or made) the tag ready. Not a foreign key:
    # operations sit above studies in the app graph.
    operation_id = models.UUIDField(null=True, blank=True)
    created_time = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["pk"]
        verbose_name = "extended query tag"

    def __str__(self) -> str:
        return self.path


def value_search_order(prefix: str = "") -> Coalesce:
    """A value row's place in the search results of its tag's level, newest last: the series
    or study id for a series or study tag (those searches go by id), else the watermark (as
    instance searches go; an instance's values are read from the version it stores). Only the
    owner column of the tag's level is set, so one expression serves every level."""
    return Coalesce(f"{prefix}series", f"{prefix}study", f"{prefix}watermark")


INCLUDED = ["study", "series", "instance", "watermark"]


class ExtendedQueryTagValue(models.Model):
    """The indexed value of one tag for one study, series or instance (the newest stored wins).

    `text_value` holds strings (upper-cased for case-insensitive matching), folded person names,
    and dates, times and date-times in a fixed-width form that sorts chronologically;
    `number_value` holds every numeric VR.
    """

    tag = models.ForeignKey(ExtendedQueryTag, on_delete=models.CASCADE, related_name="+", db_index=False)
    partition = models.ForeignKey(Partition, on_delete=models.PROTECT, related_name="+", db_index=False)
    # Named for QIDO, whose searches join the value they are filtered on (`studies.search.matching.search_driver`).
    study = models.ForeignKey(
        Study, on_delete=models.CASCADE, null=True, related_name="extended_values", db_index=False
    )
    series = models.ForeignKey(
        Series, on_delete=models.CASCADE, null=True, related_name="extended_values", db_index=False
    )
    instance = models.ForeignKey(
        Instance, on_delete=models.CASCADE, null=True, related_name="extended_values", db_index=False
    )
    # The version the value was read from: an older one never overwrites a newer one.
    watermark = models.BigIntegerField()
    text_value = models.CharField(max_length=TEXT_VALUE_LENGTH, null=True)
    number_value = models.FloatField(null=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["study", "tag"], name="eqt_value_per_study"),
            models.UniqueConstraint(fields=["series", "tag"], name="eqt_value_per_series"),
            models.UniqueConstraint(fields=["instance", "tag"], name="eqt_value_per_instance"),
        ]
        indexes = [
            # Ending in the order of the tag's level's search (`value_search_order`): a search on
            # one value reads its newest matches first.
            # The owners and the watermark included: a search may read the index alone.
            models.Index(
                "tag", "partition", "text_value", value_search_order(), name="eqt_value_text_newest", include=INCLUDED
            ),
            models.Index(
                "tag", "partition", "number_value", value_search_order(), name="eqt_value_number_newest",
                include=INCLUDED,
            ),
        ]

    def __str__(self) -> str:
        return f"{self.tag_id}={self.text_value if self.text_value is not None else self.number_value}"


class ExtendedQueryTagError(models.Model):
    """An instance whose value of a tag could not be indexed by the reindex."""

    tag = models.ForeignKey(ExtendedQueryTag, on_delete=models.CASCADE, related_name="+", db_index=False)
    instance = models.ForeignKey(Instance, on_delete=models.CASCADE, related_name="+")
    message = models.CharField(max_length=512)
    created_time = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["pk"]
        constraints = [models.UniqueConstraint(fields=["tag", "instance"], name="eqt_error_per_instance")]

    def __str__(self) -> str:
        return self.message
