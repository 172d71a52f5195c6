"""Parsing a QIDO-RS query string into a SearchQuery, with Microsoft's 400 messages.

`limit`, `offset`, `fuzzymatching` and `includefield` are case-insensitive names; every other
parameter is a filter `{attributeID}={value}` whose ID is an 8-hex tag or a case-sensitive
keyword. UID attributes take lists (backslash or comma separated, or the key repeated);
any other attribute given twice is an error.
"""

from __future__ import annotations

import datetime as dt
import re
import struct
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from dicomsvc.api.query import (
    DUPLICATE_KEY,
    EMPTY_VALUE,
    INCLUDE_ALL_MIXED,
    INCLUDE_UNKNOWN,
    INVALID_UID,
    NOT_QUERYABLE,
    RANGE_EMPTY,
    RANGE_ORDER,
    search_parameters_parse,
)
from dicomsvc.dicom_values import pn_search_form, uid_is_valid, uid_normalize
from dicomsvc.errors import InvalidQuery
from studies.dicom.vr import parse_da
from studies.eqt.models import QueryStatus, TagStatus
from studies.eqt.tags import TagDef, tags_cached
from studies.eqt.values import INTEGER_VRS, NUMBER_VRS, datetime_has_offset, datetime_key, time_key
from studies.search.attributes import (
    ALL,
    DEFAULT_V1,
    DEFAULT_V2,
    SEARCHABLE,
    SERIES_INSTANCE_UID,
    STUDY_INSTANCE_UID,
    Kind,
    Level,
    Resource,
    Searchable,
    attribute_tag,
)

UNKNOWN_PARAMETER = (
    "Invalid query: unknown query parameter '{0}'. If the parameter is an attribute keyword, check the casing "
    "as they are case-sensitive. The conformance statement has a list of supported query parameters, "
    "attributes and the levels."
)
DUPLICATE_TAG = (
    "Invalid query: attribute '{0}' has been specified more than once using different ID formats. "
    "Each attribute is only allowed to be specified once."
)
PATH_UID_REPEATED = "Invalid query: cannot specify attribute '{0}' for the given resource."
INVALID_DATE = (
    "Invalid query: specified Date value '{0}' is invalid for attribute '{1}'. "
    "Date should be valid and formatted as yyyyMMdd."
)
QUERY_DISABLED = "Query is disabled on specified attribute '{0}'."
INVALID_DATETIME = (
    "Invalid query: specified DateTime value '{0}' is invalid for attribute '{1}'. "
    "DateTime should be valid and formatted as yyyyMMddHHmmss.FFFFFF."
)
DATETIME_OFFSET = (
    "Invalid query: specified DateTime value '{0}' for attribute '{1}' contains an offset, which is not supported."
)
INVALID_TIME = (
    "Invalid query: specified Time value '{0}' is invalid for attribute '{1}'. "
    "Time should be valid and formatted as HHmmss.FFFFFF."
)
INVALID_NUMBER = "Invalid query: specified value '{0}' for attribute '{1}' is not a valid {2} value."

_LIST_SEPARATORS = re.compile(r"[\\,]")


class Match:
    """How a condition compares (the `values` of a Condition depend on it)."""

    EQUALS = "equals"  # (value,)
    ANY = "any"  # (value, value, ...)
    LIKE = "like"  # (SQL LIKE pattern,)
    RANGE = "range"  # (low or None, high or None)
    WORDS = "words"  # (folded word, ...); each must prefix some name word (DICOM wildcards allowed)
    MODALITIES = "modalities"  # ((match, value), ...) any series modality matching any


@dataclass(frozen=True)
class Condition:
    attribute: Searchable
    match: str
    values: tuple[Any, ...]


@dataclass(frozen=True)
class SearchQuery:
    resource: Resource
    conditions: tuple[Condition, ...]
    # Tags to return from stored metadata (and the computed ones among them).
    return_tags: frozenset[int]
    limit: int
    offset: int
    fuzzy: bool
    study_uid: str | None = None
    series_uid: str | None = None
    # Filter keys naming extended query tags that have indexing errors.
    erroneous: tuple[str, ...] = ()


def like_escape(text: str) -> str:
    """Literal text for a LIKE pattern whose escape character is backslash."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def wildcard_pattern(value: str) -> str:
    """A DICOM wildcard value (* any run, ? one character) as a LIKE pattern."""
    return like_escape(value).replace("*", "%").replace("?", "_")


def has_wildcard(value: str) -> bool:
    return "*" in value or "?" in value


def _include_tags(values: list[str]) -> tuple[bool, set[int]]:
    """(includefield=all?, tags) from repeated and/or comma-separated includefield values."""
    fields = [field.strip() for value in values for field in value.split(",")]
    fields = [field for field in fields if field]
    if any(field.lower() == "all" for field in fields):
        if len(fields) > 1:
            raise InvalidQuery(INCLUDE_ALL_MIXED)
        return True, set()
    tags = set()
    for field in fields:
        tag = attribute_tag(field)
        if tag is None:
            raise InvalidQuery(INCLUDE_UNKNOWN.format(field))
        tags.add(tag)
    return False, tags


def _date(attribute: Searchable, text: str) -> dt.date:
    value = parse_da(text) if len(text.strip()) == 8 else None
    if value is None:
        raise InvalidQuery(INVALID_DATE.format(text, attribute.keyword))
    return value


def _date_condition(attribute: Searchable, value: str) -> Condition:
    if "-" not in value:
        return Condition(attribute, Match.EQUALS, (_date(attribute, value),))
    if value.count("-") > 1:
        raise InvalidQuery(INVALID_DATE.format(value, attribute.keyword))
    low_text, high_text = (part.strip() for part in value.split("-"))
    if not low_text and not high_text:
        raise InvalidQuery(RANGE_EMPTY)
    low = _date(attribute, low_text) if low_text else None
    high = _date(attribute, high_text) if high_text else None
    if low is not None and high is not None and low > high:
        raise InvalidQuery(RANGE_ORDER.format(value, attribute.keyword, low_text, high_text))
    return Condition(attribute, Match.RANGE, (low, high))


def _key_condition(attribute: Searchable, value: str, key: Any, message: str) -> Condition:
    """A DT or TM value, or an inclusive range of them, in the value table's sortable form."""

    def parse(text: str) -> str:
        if attribute.kind is Kind.DATETIME and datetime_has_offset(text):
            raise InvalidQuery(DATETIME_OFFSET.format(text, attribute.keyword))
        parsed: str | None = key(text)
        if parsed is None:
            raise InvalidQuery(message.format(text, attribute.keyword))
        return parsed

    if "-" not in value or (attribute.kind is Kind.DATETIME and datetime_has_offset(value)):
        return Condition(attribute, Match.EQUALS, (parse(value),))
    if value.count("-") > 1:
        raise InvalidQuery(message.format(value, attribute.keyword))
    low_text, high_text = (part.strip() for part in value.split("-"))
    if not low_text and not high_text:
        raise InvalidQuery(RANGE_EMPTY)
    low = parse(low_text) if low_text else None
    high = parse(high_text) if high_text else None
    if low is not None and high is not None and low > high:
        raise InvalidQuery(RANGE_ORDER.format(value, attribute.keyword, low_text, high_text))
    return Condition(attribute, Match.RANGE, (low, high))


def _number_condition(attribute: Searchable, value: str) -> Condition:
    integer = attribute.vr in INTEGER_VRS
    try:
        number = float(int(value)) if integer else float(value)
    except ValueError:
        raise InvalidQuery(INVALID_NUMBER.format(value, attribute.keyword, "long" if integer else "double")) from None
    if attribute.vr == "FL":
        number = struct.unpack("<f", struct.pack("<f", number))[0]  # as a stored FL compares
    return Condition(attribute, Match.EQUALS, (number,))


def _uid_condition(attribute: Searchable, values: list[str]) -> Condition:
    uids: list[str] = []
    for value in values:
        for item in _LIST_SEPARATORS.split(value):
            uid = uid_normalize(item.strip())
            if not uid_is_valid(uid):
                raise InvalidQuery(INVALID_UID.format(item, attribute.keyword))
            uids.append(uid)
    unique = tuple(dict.fromkeys(uids))
    return Condition(attribute, Match.EQUALS if len(unique) == 1 else Match.ANY, unique)


def _string_condition(attribute: Searchable, value: str) -> Condition:
    if has_wildcard(value):
        return Condition(attribute, Match.LIKE, (wildcard_pattern(value),))
    return Condition(attribute, Match.EQUALS, (value,))


def _person_name_condition(attribute: Searchable, value: str, fuzzy: bool) -> Condition:
    # Names are matched in their folded form: casefolded, accents stripped, ^ and = as spaces.
    folded = pn_search_form(value)
    if fuzzy and folded:
        return Condition(attribute, Match.WORDS, tuple(folded.split()))
    if has_wildcard(folded):
        return Condition(attribute, Match.LIKE, (wildcard_pattern(folded),))
    return Condition(attribute, Match.EQUALS, (folded,))


def _modalities_condition(attribute: Searchable, value: str) -> Condition:
    # ModalitiesInStudy is multi-valued: a backslash list matches studies having any of them.
    choices = []
    for item in value.split("\\"):
        item = item.strip()
        if item:
            choices.append((Match.LIKE, wildcard_pattern(item)) if has_wildcard(item) else (Match.EQUALS, item))
    if not choices:
        raise InvalidQuery(EMPTY_VALUE.format(attribute.keyword))
    return Condition(attribute, Match.MODALITIES, tuple(choices))


def _condition(attribute: Searchable, values: list[str], fuzzy: bool) -> Condition:
    if attribute.kind is Kind.UID:
        return _uid_condition(attribute, values)
    (value,) = values
    if attribute.kind is Kind.DATE:
        return _date_condition(attribute, value)
    if attribute.kind is Kind.PERSON_NAME:
        return _person_name_condition(attribute, value, fuzzy)
    if attribute.kind is Kind.MODALITIES:
        return _modalities_condition(attribute, value)
    if attribute.kind is Kind.DATETIME:
        return _key_condition(attribute, value, datetime_key, INVALID_DATETIME)
    if attribute.kind is Kind.TIME:
        return _key_condition(attribute, value, time_key, INVALID_TIME)
    if attribute.kind is Kind.NUMBER:
        return _number_condition(attribute, value)
    return _string_condition(attribute, value)


_KINDS = {"PN": Kind.PERSON_NAME, "UI": Kind.UID, "DA": Kind.DATE, "DT": Kind.DATETIME, "TM": Kind.TIME}


def _extended(key: str, tag: TagDef, resource: Resource) -> Searchable:
    """An extended query tag as a filter: only a ready one, queryable, at its level or below."""
    level = Level(tag.level.value)
    if tag.status != TagStatus.READY or level not in resource.levels:
        raise InvalidQuery(NOT_QUERYABLE.format(key))
    if tag.query_status != QueryStatus.ENABLED:
        raise InvalidQuery(QUERY_DISABLED.format(key))
    kind = _KINDS.get(tag.vr, Kind.NUMBER if tag.vr in NUMBER_VRS else Kind.STRING)
    return Searchable(key, tag.tag, level, kind, "", tag_key=tag.key, vr=tag.vr)


def _filters(
    items: list[tuple[str, list[str]]], resource: Resource, study_uid: str | None, series_uid: str | None
) -> tuple[dict[int, tuple[Searchable, list[str]]], tuple[str, ...]]:
    """Filter values by tag, after every check on the attribute IDs and values; and the keys of
    extended query tags with indexing errors among them."""
    found: dict[int, tuple[Searchable, list[str]]] = {}
    keys: dict[int, str] = {}
    erroneous: list[str] = []
    extended = {tag.tag: tag for tag in tags_cached()} if items else {}
    for key, raw_values in items:
        tag = attribute_tag(key)
        if tag is None:
            raise InvalidQuery(UNKNOWN_PARAMETER.format(key))
        if tag == STUDY_INSTANCE_UID and study_uid is not None:
            raise InvalidQuery(PATH_UID_REPEATED.format("StudyInstanceUID"))
        if tag == SERIES_INSTANCE_UID and series_uid is not None:
            raise InvalidQuery(PATH_UID_REPEATED.format("SeriesInstanceUID"))
        attribute = SEARCHABLE.get(tag)
        if attribute is None and tag in extended:
            attribute = _extended(key, extended[tag], resource)
            if extended[tag].error_count:
                erroneous.append(key)
        if attribute is None or attribute.level not in resource.levels:
            raise InvalidQuery(NOT_QUERYABLE.format(key))
        values = [value.strip() for value in raw_values]
        if any(not value for value in values):
            raise InvalidQuery(EMPTY_VALUE.format(key))
        listable = attribute.kind is Kind.UID
        if tag in found:
            if not listable:
                message = DUPLICATE_KEY if keys[tag] == key else DUPLICATE_TAG
                raise InvalidQuery(message.format(key))
            found[tag][1].extend(values)
            continue
        if len(values) > 1 and not listable:
            raise InvalidQuery(DUPLICATE_KEY.format(key))
        found[tag] = (attribute, values)
        keys[tag] = key
    return found, tuple(erroneous)


def search_query_parse(
    *,
    params: Iterable[tuple[str, list[str]]],
    resource: Resource,
    api_version: int,
    study_uid: str | None = None,
    series_uid: str | None = None,
) -> SearchQuery:
    """Validate a QIDO-RS query string (as QueryDict.lists()). Raises InvalidQuery."""
    parameters = search_parameters_parse(params)
    include_all, include_tags = _include_tags(parameters.includefield)
    filters, erroneous = _filters(parameters.filters, resource, study_uid, series_uid)
    conditions = tuple(_condition(attribute, values, parameters.fuzzy) for attribute, values in filters.values())

    defaults = ALL if include_all else (DEFAULT_V1 if api_version == 1 else DEFAULT_V2)
    return_tags = set(include_tags) | set(filters)
    for level in resource.levels:
        return_tags |= defaults[level]
    if study_uid is not None:
        return_tags.add(STUDY_INSTANCE_UID)
    if series_uid is not None:
        return_tags.add(SERIES_INSTANCE_UID)
    return SearchQuery(
        resource=resource,
        conditions=conditions,
        return_tags=frozenset(return_tags),
        limit=parameters.limit,
        offset=parameters.offset,
        fuzzy=parameters.fuzzy,
        study_uid=study_uid,
        series_uid=series_uid,
        erroneous=erroneous,
    )


__all__ = ["Condition", "Match", "SearchQuery", "search_query_parse"]
