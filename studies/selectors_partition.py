"""Reads of partitions joined with what they hold: the statistics the admin shows per partition."""

from __future__ import annotations

from django.db.models import Count, F, OuterRef, QuerySet, Subquery, Sum, Value
from django.db.models.functions import Coalesce

from partitions.models import Partition
from studies.models import Instance, InstanceStatus, Study


def partition_statistics_list() -> QuerySet[Partition]:
    """Partitions annotated with `num_studies`, `num_instances` and `stored_bytes`, in one query.

    Study and instance counts come from the counters the store and delete services keep on
    each study (one row per study, not per instance); `stored_bytes` sums the visible
    instances' files, original versions kept by a bulk update included.
    """
    studies = Study.objects.filter(partition=OuterRef("pk"), num_instances__gt=0).values("partition")
    instances = Instance.objects.filter(partition=OuterRef("pk"), status=InstanceStatus.CREATED).values("partition")
    zero = Value(0)
    return Partition.objects.annotate(
        num_studies=Coalesce(Subquery(studies.annotate(n=Count("pk")).values("n")), zero),
        num_instances=Coalesce(Subquery(studies.annotate(n=Sum("num_instances")).values("n")), zero),
        stored_bytes=Coalesce(
            Subquery(
                instances.annotate(n=Sum(F("file_size") + Coalesce("original_file_size", zero))).values("n")
            ),
            zero,
        ),
    ).order_by("partition_key")
