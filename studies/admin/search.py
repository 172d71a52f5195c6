"""The study list's search panel: QIDO's study search, typed into a form.

The fields become a QIDO-RS query (`PatientName` with fuzzy matching, `PatientID`,
`AccessionNumber`, a `StudyDate` range, `ModalitiesInStudy`), parsed by QIDO's own parser and
matched by QIDO's own WHERE clause (`studies.search.selectors.study_matches_q`), so the admin
finds exactly what `GET /studies?...&fuzzymatching=true` finds, through the same indexes. An
invalid value is said on the page with QIDO's message.
"""

from __future__ import annotations

import datetime as dt
from functools import reduce
from operator import or_
from typing import Any

from django.contrib import admin
from django.db.models import Q, QuerySet
from django.http import HttpRequest

from dicomsvc.admin_tools import list_error
from dicomsvc.api.query import whole_number
from dicomsvc.errors import InvalidQuery
from partitions.models import Partition
from studies.models import Study
from studies.search.attributes import Resource
from studies.search.query import SearchQuery, search_query_parse
from studies.search.selectors import study_matches_q

PARTITION_PARAMETER = "partition__partition_key__exact"
# (form field, label, QIDO attribute, placeholder)
FIELDS = (
    ("patient_name", "Patient name", "PatientName", "e.g. doe jo"),
    ("patient_id", "Patient ID", "PatientID", ""),
    ("accession", "Accession number", "AccessionNumber", ""),
    ("modality", "Modality", "ModalitiesInStudy", "e.g. CT"),
)
DATE_FIELDS = (("date_from", "Study date from"), ("date_to", "Study date to"))


def _qido_date(name: str, text: str) -> str:
    """An HTML date input's value (YYYY-MM-DD) or a DICOM date as a DICOM date."""
    try:
        return dt.date.fromisoformat(text).strftime("%Y%m%d")
    except ValueError:
        raise InvalidQuery(f"'{text}' is not a date for {name} (YYYY-MM-DD).") from None


def qido_parameters(values: dict[str, str]) -> list[tuple[str, list[str]]]:
    """The QIDO-RS query string the form's values stand for."""
    params = [(attribute, [values[field]]) for field, _, attribute, _ in FIELDS if values.get(field)]
    low, high = values.get("date_from", ""), values.get("date_to", "")
    if low or high:
        low_text = _qido_date("Study date from", low) if low else ""
        high_text = _qido_date("Study date to", high) if high else ""
        params.append(("StudyDate", [f"{low_text}-{high_text}" if low_text != high_text else low_text]))
    if params:
        params.append(("fuzzymatching", ["true"]))
    return params


def study_search_query(values: dict[str, str]) -> SearchQuery | None:
    """The parsed query, or None when no field is filled in. Raises InvalidQuery."""
    params = qido_parameters(values)
    if not params:
        return None
    return search_query_parse(params=params, resource=Resource.STUDIES, api_version=2)


def study_search_filter(*, query: SearchQuery, partitions: list[Partition]) -> Q:
    """QIDO's clause in each partition searched (partitions are few; usually one is chosen)."""
    return reduce(or_, (study_matches_q(partition=p, query=query) for p in partitions), Q(pk__in=[]))


class StudySearchFilter(admin.ListFilter):
    title = "search"
    template = "admin/studies/study_search_filter.html"
    names = tuple(field for field, *_ in FIELDS) + tuple(field for field, _ in DATE_FIELDS)

    def __init__(self, request: HttpRequest, params: dict[str, list[str]], model: Any, model_admin: Any) -> None:
        super().__init__(request, params, model, model_admin)
        self.request = request
        self.values: dict[str, str] = {}
        for name in self.names:
            if name in params:
                self.values[name] = params.pop(name)[-1].strip()
                self.used_parameters[name] = self.values[name]
        self.partition_key = params.get(PARTITION_PARAMETER, [""])[-1]
        self.error: str | None = None
        self.query: SearchQuery | None = None
        try:
            self.query = study_search_query(self.values)
        except InvalidQuery as exc:
            self.error = str(exc)

    def has_output(self) -> bool:
        return True

    def expected_parameters(self) -> list[str | None]:
        return list(self.names)

    def queryset(self, request: HttpRequest, queryset: QuerySet[Study]) -> QuerySet[Study]:
        if self.error is not None:
            list_error(request, f"Invalid search: {self.error}")
            return queryset.none()
        if self.query is None:
            return queryset
        partitions = Partition.objects.all()
        key = whole_number(self.partition_key)
        if key is not None:
            partitions = partitions.filter(pk=key)
        return queryset.filter(study_search_filter(query=self.query, partitions=list(partitions)))

    # django-stubs wants an Iterator; Django only iterates what `choices` returns.
    def choices(self, changelist: Any) -> list[dict[str, Any]]:  # type: ignore[override]
        keep = changelist.get_filters_params()
        hidden = [(name, value) for name, values in keep.items() if name not in self.names for value in values]
        fields = [
            {"name": name, "label": label, "value": self.values.get(name, ""), "placeholder": placeholder}
            for name, label, _, placeholder in FIELDS
        ]
        dates = [{"name": name, "label": label, "value": self.values.get(name, "")} for name, label in DATE_FIELDS]
        return [{
            "fields": fields,
            "dates": dates,
            "hidden": hidden,
            "active": bool(self.values),
            "clear_url": changelist.get_query_string(remove=list(self.names)),
        }]
