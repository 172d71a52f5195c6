"""Parsing a workitem search (PS3.18 §11.9) into a WorkitemQuery, with the QIDO-RS messages.

`limit` (1..200, default 100), `offset`, `fuzzymatching` and `includefield` are case-insensitive
names; every other parameter is a filter whose attribute ID is a keyword path or 8-hex tag path
(`ReferencedRequestSequence.AccessionNumber`, `0040A370.00080050`) among the searchable ones.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from pydicom.datadict import keyword_for_tag, tag_for_keyword

from dicomsvc.api.query import (
    DUPLICATE_KEY,
    EMPTY_VALUE,
    INCLUDE_ALL_MIXED,
    INCLUDE_UNKNOWN,
    INVALID_UID,
    RANGE_EMPTY,
    RANGE_ORDER,
    search_parameters_parse,
)
from dicomsvc.dicom_values import pn_search_form, uid_is_valid_unpadded
from dicomsvc.errors import InvalidQuery
from studies.workitems.values import dt_bounds

# Microsoft's texts (DicomCoreResource.resx) as its WorkitemQueryParser uses them: an ID that is no
# attribute gets the QIDO text, an attribute that is not searchable the workitem one. The double
# spaces are Microsoft's.
NOT_AN_ATTRIBUTE = (
    "Invalid query: AttributeId {0} is not queryable.  If the parameter is an attribute keyword, check the "
    "casing as they are case-sensitive. The conformance statement has a list of supported query parameters, "
    "attributes and the levels."
)
NOT_QUERYABLE = (
    "Invalid workitem query. AttributeId {0} is not queryable.  If the parameter is an attribute keyword, check "
    "the casing as they are case-sensitive. The conformance statement has a list of supported query parameters "
    "and attributes."
)
NESTED = "Nested Dicom sequence tags are currently not supported."
DUPLICATE_ATTRIBUTE = (
    "Invalid query: attribute '{0}' has been specified more than once using different ID formats. "
    "Each attribute is only allowed to be specified once."
)
INCLUDE_NESTED = "Sequential dicom tags are currently not supported."
INVALID_DATETIME = (
    "Invalid query: specified DateTime value '{0}' is invalid for attribute '{1}'. "
    "DateTime should be valid and formatted as yyyyMMddHHmmss.FFFFFF where yyyy is mandatory."
)
_HEX_TAG = re.compile(r"[0-9A-Fa-f]{8}")


class Match:
    EQUALS = "equals"  # (value,)
    IEQUALS = "iequals"  # (value,), case-insensitive
    RANGE = "range"  # (low or None, high or None)
    WORDS = "words"  # (folded word, ...): each begins some word of the name


@dataclass(frozen=True)
class Searchable:
    keyword: str  # the path, as keywords joined by "."
    column: str
    kind: str  # "pn", "string", "datetime", "state", "uid"


SEARCHABLE = {
    searchable.keyword: searchable
    for searchable in (
        Searchable("PatientName", "patient_name_search", "pn"),
        Searchable("PatientID", "patient_id", "string"),
        Searchable("ReferencedRequestSequence.AccessionNumber", "accession_number", "string"),
        Searchable("ReferencedRequestSequence.RequestedProcedureID", "requested_procedure_id", "string"),
        Searchable("ScheduledProcedureStepStartDateTime", "scheduled_start", "datetime"),
        Searchable("ScheduledStationNameCodeSequence.CodeValue", "station_name_code", "string"),
        Searchable("ScheduledStationClassCodeSequence.CodeValue", "station_class_code", "string"),
        Searchable("ScheduledStationGeographicLocationCodeSequence.CodeValue", "station_location_code", "string"),
        Searchable("ProcedureStepState", "state", "state"),
        Searchable("StudyInstanceUID", "study_instance_uid", "uid"),
    )
}


@dataclass(frozen=True)
class Condition:
    column: str
    match: str
    values: tuple[Any, ...]


@dataclass(frozen=True)
class WorkitemQuery:
    conditions: tuple[Condition, ...]
    limit: int
    offset: int
    fuzzy: bool


def _keyword(part: str) -> str | None:
    """A path element as its keyword; keywords are case-sensitive, tags are 8 hex digits."""
    if _HEX_TAG.fullmatch(part):
        return keyword_for_tag(int(part, 16)) or None
    return part if tag_for_keyword(part) is not None else None


def attribute_path(attribute_id: str) -> str | None:
    """`0040A370.00080050` -> `ReferencedRequestSequence.AccessionNumber`; None if not DICOM."""
    keywords = [_keyword(part) for part in attribute_id.split(".")]
    if not keywords or any(keyword is None for keyword in keywords):
        return None
    return ".".join(keyword for keyword in keywords if keyword)


def _include_check(values: list[str]) -> None:
    """Validate includefield. Every attribute of a workitem is returned, so it selects nothing."""
    fields = [field.strip() for value in values for field in value.split(",")]
    fields = [field for field in fields if field]
    if any(field.lower() == "all" for field in fields):
        if len(fields) > 1:
            raise InvalidQuery(INCLUDE_ALL_MIXED)
        return
    for field in fields:
        path = attribute_path(field)
        if path is None:
            raise InvalidQuery(INCLUDE_UNKNOWN.format(field))
        if "." in path:
            raise InvalidQuery(INCLUDE_NESTED)


def _datetime_condition(searchable: Searchable, value: str) -> Condition:
    def bounds(text: str) -> tuple[str, str]:
        found = dt_bounds(text)
        if found is None:
            raise InvalidQuery(INVALID_DATETIME.format(text, searchable.keyword))
        return found

    if "-" not in value:
        return Condition(searchable.column, Match.RANGE, bounds(value))
    if value.count("-") > 1:
        raise InvalidQuery(INVALID_DATETIME.format(value, searchable.keyword))
    low_text, high_text = (part.strip() for part in value.split("-"))
    if not low_text and not high_text:
        raise InvalidQuery(RANGE_EMPTY)
    low = bounds(low_text)[0] if low_text else None
    high = bounds(high_text)[1] if high_text else None
    if low is not None and high is not None and low > high:
        raise InvalidQuery(RANGE_ORDER.format(value, searchable.keyword, low_text, high_text))
    return Condition(searchable.column, Match.RANGE, (low, high))


def _condition(searchable: Searchable, value: str, fuzzy: bool) -> Condition:
    if searchable.kind == "pn":
        # Names match in their folded form (case and accents ignored), as Microsoft's collation does.
        folded = pn_search_form(value)
        if fuzzy:
            return Condition(searchable.column, Match.WORDS, tuple(folded.split()))
        return Condition(searchable.column, Match.EQUALS, (folded,))
    if searchable.kind == "datetime":
        return _datetime_condition(searchable, value)
    if searchable.kind == "state":
        return Condition(searchable.column, Match.EQUALS, (value.upper(),))
    if searchable.kind == "uid":
        if not uid_is_valid_unpadded(value):
            raise InvalidQuery(INVALID_UID.format(value, searchable.keyword))
        return Condition(searchable.column, Match.EQUALS, (value,))
    return Condition(searchable.column, Match.IEQUALS, (value,))


def workitem_query_parse(*, params: Iterable[tuple[str, list[str]]]) -> WorkitemQuery:
    """Validate a workitem search query string (as QueryDict.lists()). Raises InvalidQuery."""
    parameters = search_parameters_parse(params)
    filters: dict[str, tuple[Searchable, str]] = {}
    for key, values in parameters.filters:
        path = attribute_path(key)
        if path is None:
            raise InvalidQuery(NOT_AN_ATTRIBUTE.format(key))
        if path.count(".") > 1:
            raise InvalidQuery(NESTED)
        searchable = SEARCHABLE.get(path)
        if searchable is None:
            raise InvalidQuery(NOT_QUERYABLE.format(key))
        if len(values) > 1:
            raise InvalidQuery(DUPLICATE_KEY.format(key))
        value = values[0].strip()
        if not value:
            raise InvalidQuery(EMPTY_VALUE.format(key))
        if searchable.keyword in filters:  # the same attribute by keyword and by tag
            raise InvalidQuery(DUPLICATE_ATTRIBUTE.format(key))
        filters[searchable.keyword] = (searchable, value)
    _include_check(parameters.includefield)
    conditions = tuple(_condition(searchable, value, parameters.fuzzy) for searchable, value in filters.values())
    return WorkitemQuery(
        conditions=conditions, limit=parameters.limit, offset=parameters.offset, fuzzy=parameters.fuzzy
    )
