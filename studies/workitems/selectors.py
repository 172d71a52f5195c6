"""Reads of workitems: one by UID, and the search."""

from __future__ import annotations

import json
from typing import Any

from django.db.models import Q

from dicomsvc.errors import WorkitemNotFound
from partitions.models import Partition
from studies.workitems.dataset import Dataset
from studies.workitems.models import Workitem, WorkitemNameWord
from studies.workitems.query import Condition, Match, WorkitemQuery


def workitem_get(*, partition: Partition, uid: str) -> Workitem:
    workitem = Workitem.objects.filter(partition=partition, workitem_uid=uid).first()
    if workitem is None:
        raise WorkitemNotFound()
    return workitem


def workitem_dataset(*, workitem: Workitem) -> Dataset:
    """The dataset a reader gets: as stored, which never holds the Transaction UID."""
    dataset: Dataset = json.loads(workitem.dataset)
    return dataset


def _words_match(partition: Partition, words: tuple[str, ...]) -> Q:
    """Workitems whose folded PatientName has, for each of `words`, a word it begins."""
    if not words:
        return Q()
    first, *others = words
    match = Q(partition=partition, word__startswith=first)
    for word in others:
        match &= Q(name__startswith=word) | Q(name__contains=f" {word}")
    return Q(id__in=WorkitemNameWord.objects.filter(match).values("workitem_id"))


def _filter(partition: Partition, condition: Condition) -> Q:
    column = condition.column
    if condition.match == Match.EQUALS:
        return Q(**{column: condition.values[0]})
    if condition.match == Match.IEQUALS:
        return Q(**{f"{column}__iexact": condition.values[0]})
    if condition.match == Match.RANGE:
        low, high = condition.values
        bounds: dict[str, Any] = {f"{column}__gt": ""}  # a workitem without the attribute never matches
        if low is not None:
            bounds[f"{column}__gte"] = low
        if high is not None:
            bounds[f"{column}__lte"] = high
        return Q(**bounds)
    return _words_match(partition, condition.values)  # Match.WORDS


def workitem_search(*, partition: Partition, query: WorkitemQuery) -> list[str]:
    """A page of matching workitems in creation order, as their stored DICOM JSON text.

    The text is what a result holds (the dataset, never the Transaction UID), so a page is
    joined as stored rather than decoded and encoded again.
    """
    rows = Workitem.objects.filter(partition=partition)
    for condition in query.conditions:
        rows = rows.filter(_filter(partition, condition))
    return list(rows.order_by("id").values_list("dataset", flat=True)[query.offset : query.offset + query.limit])
