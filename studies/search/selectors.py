"""QIDO-RS reads: one SQL query per search, whatever the number of results.

Every search is scoped to one partition and sees only visible rows (studies and series
with created instances, instances in status CREATED), newest first: study and series by
creation, instances by watermark. A page is fetched with one row more than asked, to tell
whether results were cut off. Study and series results take their attribute values from
their newest visible instance, fetched by a correlated subquery in the same statement.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django.db.models import F, Model, OuterRef, Q, QuerySet, Subquery, TextField, Value
from django.db.models.functions import Coalesce, NullIf

from partitions.models import Partition
from studies.eqt.models import value_search_order
from studies.models import Instance, InstanceStatus, Series, Study
from studies.search.attributes import COMPUTED, Level
from studies.search.matching import conditions_filter, driver_relation, search_driver
from studies.search.query import SearchQuery
from studies.search.results import computed_elements, projection_serves, result_dataset, stored_keys


@dataclass(frozen=True)
class SearchPage:
    results: list[dict[str, Any]]
    # More results match beyond this page.
    truncated: bool


def _newest_metadata(owner: str, query: SearchQuery) -> Subquery:
    newest = (
        Instance.objects.filter(**{owner: OuterRef("pk")}, status=InstanceStatus.CREATED)
        .order_by("-watermark")
        .values(document=_document(query))[:1]
    )
    return Subquery(newest)


def _document(query: SearchQuery) -> Any:
    """The stored text a result is built from: the small projection when it holds every
    returned attribute (and was written), else the whole metadata."""
    if projection_serves(stored_keys(query.return_tags)):
        return Coalesce(NullIf(F("search_metadata"), Value("")), F("metadata"), output_field=TextField())
    return F("metadata")


def _window(matches: QuerySet[Any], query: SearchQuery, order: Any) -> QuerySet[Any]:
    return matches.order_by(order).values("pk")[query.offset : query.offset + query.limit + 1]


def _matches(
    model: type[Model], *, query: SearchQuery, level: Level, partition: Partition, visible: Q, order: str
) -> tuple[QuerySet[Any], Any]:
    """The rows of `model` matching the query, and their order (newest first).

    A condition on one value of a tag of this level is a join of its value row, ordered by
    that row (`search_driver`); every other condition is in the WHERE clause.
    """
    driver = search_driver(query.conditions, level=level)
    conditions = tuple(condition for condition in query.conditions if condition is not driver)
    matches = model._default_manager.filter(conditions_filter(conditions, level=level, partition=partition), visible)
    if driver is None:
        return matches, order
    # An inner join on a column the value index includes: PostgreSQL may read the index alone.
    matches = matches.annotate(driver=driver_relation(driver, partition=partition))
    matches = matches.filter(driver__watermark__isnull=False)
    return matches, value_search_order("driver__").desc()


def _page(query: SearchQuery, rows: Sequence[Mapping[str, Any]], build: Any) -> SearchPage:
    keys = stored_keys(query.return_tags)
    results = [build(row, keys) for row in rows[: query.limit]]
    return SearchPage(results=results, truncated=len(rows) > query.limit)


def study_matches_q(*, partition: Partition, query: SearchQuery) -> Q:
    """The WHERE clause of a study search in one partition: visible studies matching the query.

    QIDO's study search and the admin's study list both filter with it, so a name found by
    one is found by the other.
    """
    return Q(conditions_filter(query.conditions, level=Level.STUDY, partition=partition), _visible(partition))


def _visible(partition: Partition) -> Q:
    """Studies and series of the partition that hold a visible instance."""
    return Q(partition=partition, num_instances__gt=0)


def study_search(*, partition: Partition, query: SearchQuery) -> SearchPage:
    """Studies matching the query, newest first."""
    matches, order = _matches(
        Study, query=query, level=Level.STUDY, partition=partition, visible=_visible(partition), order="-pk"
    )
    rows = list(
        Study.objects.filter(pk__in=_window(matches, query, order))
        .order_by("-pk")
        .annotate(newest_metadata=_newest_metadata("study_id", query))
        .values("newest_metadata", "modalities_in_study", "num_series", "num_instances")
    )

    def build(row: dict[str, Any], keys: list[str]) -> dict[str, Any]:
        computed = computed_elements(
            query.return_tags,
            modalities=row["modalities_in_study"],
            study_series=row["num_series"],
            study_instances=row["num_instances"],
        )
        return result_dataset(metadata=row["newest_metadata"], keys=keys, computed=computed)

    return _page(query, rows, build)


def series_search(*, partition: Partition, query: SearchQuery) -> SearchPage:
    """Series matching the query (within the path's study, if any), newest first."""
    matches, order = _matches(
        Series, query=query, level=Level.SERIES, partition=partition, visible=_visible(partition), order="-pk"
    )
    if query.study_uid is not None:
        # The study's partition too, so the (partition, study UID) unique index finds it.
        matches = matches.filter(study__partition=partition, study__study_instance_uid=query.study_uid)
    columns = ["newest_metadata", "num_instances"]
    if query.return_tags & COMPUTED[Level.STUDY]:
        columns += ["study__modalities_in_study", "study__num_series", "study__num_instances"]
    rows = list(
        Series.objects.filter(pk__in=_window(matches, query, order))
        .order_by("-pk")
        .annotate(newest_metadata=_newest_metadata("series_id", query))
        .values(*columns)
    )

    def build(row: dict[str, Any], keys: list[str]) -> dict[str, Any]:
        computed = computed_elements(
            query.return_tags,
            modalities=row.get("study__modalities_in_study"),
            study_series=row.get("study__num_series"),
            study_instances=row.get("study__num_instances"),
            series_instances=row["num_instances"],
        )
        return result_dataset(metadata=row["newest_metadata"], keys=keys, computed=computed)

    return _page(query, rows, build)


def instance_search(*, partition: Partition, query: SearchQuery) -> SearchPage:
    """Instances matching the query (within the path's study and series, if any), newest first."""
    visible = Q(partition=partition, status=InstanceStatus.CREATED)
    matches, order = _matches(
        Instance, query=query, level=Level.INSTANCE, partition=partition, visible=visible, order="-watermark"
    )
    if query.study_uid is not None:
        matches = matches.filter(study_instance_uid=query.study_uid)
    if query.series_uid is not None:
        matches = matches.filter(series_instance_uid=query.series_uid)
    columns = ["document"]
    if query.return_tags & COMPUTED[Level.STUDY]:
        columns += ["study__modalities_in_study", "study__num_series", "study__num_instances"]
    if query.return_tags & COMPUTED[Level.SERIES]:
        columns += ["series__num_instances"]
    rows = list(
        matches.annotate(document=_document(query))
        .order_by(order)
        .values(*columns)[query.offset : query.offset + query.limit + 1]
    )

    def build(row: dict[str, Any], keys: list[str]) -> dict[str, Any]:
        computed = computed_elements(
            query.return_tags,
            modalities=row.get("study__modalities_in_study"),
            study_series=row.get("study__num_series"),
            study_instances=row.get("study__num_instances"),
            series_instances=row.get("series__num_instances"),
        )
        return result_dataset(metadata=row["document"], keys=keys, computed=computed)

    return _page(query, rows, build)


SEARCHES = {Level.STUDY: study_search, Level.SERIES: series_search, Level.INSTANCE: instance_search}

__all__ = ["SEARCHES", "SearchPage", "instance_search", "series_search", "study_matches_q", "study_search"]
