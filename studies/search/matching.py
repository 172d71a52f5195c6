"""Turning parsed conditions into ORM filters over the indexed columns (never the metadata).

Each condition becomes one WHERE term on the model of the result level; conditions on a
parent level reach it through the foreign key (`study__...`, `series__...`), except the
study and series UIDs that instance rows carry themselves.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import reduce
from operator import or_
from typing import Any

from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Exists, F, FilteredRelation, Lookup, OuterRef, Q, QuerySet, Value
from django.db.models.functions import Upper
from django.db.models.lookups import Exact
from django.db.models.sql.compiler import SQLCompiler

from partitions.models import Partition
from studies.eqt.models import ExtendedQueryTagValue
from studies.models import PersonNameAttribute, PersonNameWord, Series
from studies.search.attributes import SERIES_INSTANCE_UID, STUDY_INSTANCE_UID, Kind, Level
from studies.search.query import Condition, Match, has_wildcard, wildcard_pattern

# Path from the result level's model to each level's columns.
_PATHS = {
    Level.STUDY: {Level.STUDY: ""},
    Level.SERIES: {Level.STUDY: "study__", Level.SERIES: ""},
    Level.INSTANCE: {Level.STUDY: "study__", Level.SERIES: "series__", Level.INSTANCE: ""},
}
# Instance rows carry their study and series UIDs: no join needed to match them.
_INSTANCE_OWN = {STUDY_INSTANCE_UID: "study_instance_uid", SERIES_INSTANCE_UID: "series_instance_uid"}
# Column holding the study's primary key on the result level's model.
_STUDY_KEY = {Level.STUDY: "pk", Level.SERIES: "study_id", Level.INSTANCE: "study_id"}
_WORD_ATTRIBUTE = {
    0x00100010: PersonNameAttribute.PATIENT_NAME,
    0x00080090: PersonNameAttribute.REFERRING_PHYSICIAN_NAME,
}


class Like(Lookup):
    """`lhs LIKE rhs` with backslash as escape character on every backend.

    PostgreSQL's default escape is already backslash; leaving the ESCAPE clause out keeps
    the pattern a plain constant, so a prefix pattern can use a btree (pattern_ops) index.
    """

    lookup_name = "dicom_like"
    prepare_rhs = False

    # Django 5.2 lookups return list params; django-stubs 6.1 types Django 6's tuples.
    def as_sql(  # type: ignore[override]
        self, compiler: SQLCompiler, connection: BaseDatabaseWrapper
    ) -> tuple[str, list[Any]]:
        lhs, lhs_params = self.process_lhs(compiler, connection)
        rhs, rhs_params = self.process_rhs(compiler, connection)
        sql = f"{lhs} LIKE {rhs}"
        if connection.vendor != "postgresql":
            sql += " ESCAPE '\\'"
        return sql, [*lhs_params, *rhs_params]


class InSubquery(Lookup):
    """`lhs IN (subquery)`; on PostgreSQL `lhs = ANY(ARRAY(subquery))`, the same rows.

    ARRAY() makes the subquery an InitPlan that runs once, first; the outer table is then
    read by index for just those ids (studies: newest first, stopping at the page's limit).
    Given `IN`, PostgreSQL may instead walk the whole table newest first until the limit:
    fast when matches are many and evenly spread, a scan of every study when they are few
    and its estimate of their number is too high, as it often is for name prefixes
    (docs/search.md has a measured case).
    """

    lookup_name = "dicom_in_subquery"
    prepare_rhs = False

    def _operands(self, compiler: SQLCompiler, connection: BaseDatabaseWrapper) -> tuple[str, str, list[Any]]:
        lhs, lhs_params = self.process_lhs(compiler, connection)
        rhs, rhs_params = self.process_rhs(compiler, connection)
        return lhs, rhs, [*lhs_params, *rhs_params]

    def as_sql(  # type: ignore[override]  # list params, as above
        self, compiler: SQLCompiler, connection: BaseDatabaseWrapper
    ) -> tuple[str, list[Any]]:
        lhs, rhs, params = self._operands(compiler, connection)
        return f"{lhs} IN {rhs}", params

    def as_postgresql(self, compiler: SQLCompiler, connection: BaseDatabaseWrapper) -> tuple[str, list[Any]]:
        lhs, rhs, params = self._operands(compiler, connection)
        return f"{lhs} = ANY(ARRAY{rhs})", params


def _string_match(column: str, match: str, value: str) -> Q:
    # Case-insensitive like Microsoft's collation; UPPER on both sides keeps one backend's rules.
    if match == Match.LIKE:
        return Q(Like(Upper(column), Upper(Value(value))))
    return Q(Exact(Upper(column), Upper(Value(value))))


def _literal_length(word: str) -> int:
    """Characters before the first wildcard: the part of a word an index range can use."""
    return len(re.split(r"[*?]", word, maxsplit=1)[0])


def _longest_word(condition: Condition) -> str:
    longest: str = max(condition.values, key=_literal_length)
    return longest


def _word_prefix(word: str) -> str:
    """LIKE pattern of the words that `word` (DICOM wildcards allowed) is a prefix of."""
    return wildcard_pattern(word) + "%"


def _words_match(words: Iterable[str], *, name: str, study: str, attribute: PersonNameAttribute) -> Q:
    """Each of `words` is a prefix of some word of the folded name in column `name`.

    A folded name is its words joined by single spaces, so a word without wildcards is
    checked on the whole name. `*` could span words there: a word with wildcards is checked
    on the word rows of the study whose id is in column `study` (rare).
    """
    match = Q()
    for word in words:
        pattern = _word_prefix(word)
        if has_wildcard(word):
            rows = PersonNameWord.objects.filter(Like(F("word"), Value(pattern)), study_id=OuterRef(study),
                                                 attribute=attribute)
            match &= Q(Exists(rows))
        else:
            match &= Q(Like(F(name), Value(pattern))) | Q(Like(F(name), Value(f"% {pattern}")))
    return match


def _studies_with_words(condition: Condition, partition: Partition) -> QuerySet[Any]:
    """Ids of studies where each word of the condition prefixes some word of the name.

    The word with the longest literal start picks the candidates, one range of the word
    index; the other words are checked on each candidate's index entry (`name`), so the
    cost follows the candidates of one word, not the number of words matching the shortest
    one (for `Will J`, the candidates of `will`, not every name word starting with `j`). A study may
    appear twice (two of its words start with the driving word).
    """
    attribute = _WORD_ATTRIBUTE[condition.attribute.tag]
    driver = _longest_word(condition)
    others = {word for word in condition.values if word != driver}
    return (
        PersonNameWord.objects.filter(Like(F("word"), Value(_word_prefix(driver))), partition=partition,
                                      attribute=attribute)
        .filter(_words_match(sorted(others), name="name", study="study_id", attribute=attribute))
        .values("study_id")
    )


def _column(condition: Condition, level: Level) -> str:
    attribute = condition.attribute
    if level is Level.INSTANCE and attribute.tag in _INSTANCE_OWN:
        return _INSTANCE_OWN[attribute.tag]
    return _PATHS[level][attribute.level] + attribute.column


# Column of the value table holding the owner at each tag level, and the column of the result
# level's model holding that owner.
_VALUE_OWNER = {Level.STUDY: "study_id", Level.SERIES: "series_id", Level.INSTANCE: "instance_id"}
_RESULT_OWNER = {
    Level.STUDY: {Level.STUDY: "pk"},
    Level.SERIES: {Level.STUDY: "study_id", Level.SERIES: "pk"},
    Level.INSTANCE: {Level.STUDY: "study_id", Level.SERIES: "series_id", Level.INSTANCE: "pk"},
}


def _key(value: Any) -> Any:
    """A query value in the value table's form (dates as yyyyMMdd text)."""
    return value.strftime("%Y%m%d") if hasattr(value, "strftime") else value


def _stored_forms(condition: Condition) -> list[Any]:
    """The condition's values as the value table holds them: strings and UIDs upper-cased;
    folded names, dates and times need no change."""
    fold = condition.attribute.kind in (Kind.STRING, Kind.UID)
    return [_key(value).upper() if fold and isinstance(value, str) else _key(value) for value in condition.values]


def search_driver(conditions: tuple[Condition, ...], *, level: Level) -> Condition | None:
    """The condition a search at `level` joins its value row for, if any: the first of a tag
    of that level matching one value (no wildcard, list or range).

    Ordered by `value_search_order` of that row, which is the results' own order, the newest
    matches come first from the value index and the search stops at its page; an EXISTS
    would read every match to sort them, thousands for a common value.
    """
    for condition in conditions:
        attribute = condition.attribute
        if attribute.tag_key is not None and attribute.level is level and condition.match == Match.EQUALS:
            return condition
    return None


def driver_relation(condition: Condition, *, partition: Partition) -> FilteredRelation:
    """The value row of `search_driver`'s condition, as a relation of the result row."""
    column = "number_value" if condition.attribute.kind is Kind.NUMBER else "text_value"
    match = {
        "extended_values__tag_id": condition.attribute.tag_key,
        "extended_values__partition": partition,
        f"extended_values__{column}": _stored_forms(condition)[0],
    }
    return FilteredRelation("extended_values", condition=Q(**match))


def _extended_value(condition: Condition) -> Q:
    """The condition on the value table's columns (`studies.eqt.values` for the stored forms)."""
    attribute = condition.attribute
    if attribute.kind is Kind.NUMBER:
        return Q(number_value=condition.values[0])
    if condition.match == Match.WORDS:
        # No word rows for these: each word prefixes the folded name or one of its later words.
        match = Q()
        for word in sorted(set(condition.values)):
            pattern = _word_prefix(word)
            match &= Q(Like(F("text_value"), Value(pattern))) | Q(Like(F("text_value"), Value(f"% {pattern}")))
        return match
    values = _stored_forms(condition)
    if condition.match == Match.ANY:
        return Q(text_value__in=values)
    if condition.match == Match.LIKE:
        return Q(Like(F("text_value"), Value(values[0])))
    if condition.match == Match.RANGE:
        low, high = values
        bounds = {}
        if low is not None:
            bounds["text_value__gte"] = low
        if high is not None:
            bounds["text_value__lte"] = high
        return Q(**bounds)
    return Q(text_value=values[0])


def _extended_filter(condition: Condition, *, level: Level, partition: Partition) -> Q:
    """An extended query tag's condition: a value row of the tag, for the result row's owner at
    the tag's level, matches it (an EXISTS the planner may also run as a semi-join)."""
    attribute = condition.attribute
    rows = ExtendedQueryTagValue.objects.filter(
        _extended_value(condition),
        tag_id=attribute.tag_key,
        partition=partition,
        **{_VALUE_OWNER[attribute.level]: OuterRef(_RESULT_OWNER[level][attribute.level])},
    )
    return Q(Exists(rows))


def condition_filter(condition: Condition, *, level: Level, partition: Partition) -> Q:
    """The WHERE term of one condition for a search whose results are at `level`."""
    attribute = condition.attribute
    if attribute.tag_key is not None:
        return _extended_filter(condition, level=level, partition=partition)
    if attribute.kind is Kind.MODALITIES:
        matches = reduce(or_, (_string_match("modality", match, value) for match, value in condition.values))
        series = Series.objects.filter(matches, partition=partition, num_instances__gt=0).values("study_id")
        return Q(**{f"{_STUDY_KEY[level]}__in": series})
    if condition.match == Match.WORDS:
        return Q(InSubquery(F(_STUDY_KEY[level]), _studies_with_words(condition, partition)))

    column = _column(condition, level)
    if attribute.kind is Kind.STRING:
        return _string_match(column, condition.match, condition.values[0])
    if condition.match == Match.ANY:
        return Q(**{f"{column}__in": condition.values})
    if condition.match == Match.RANGE:
        low, high = condition.values
        bounds = {}
        if low is not None:
            bounds[f"{column}__gte"] = low
        if high is not None:
            bounds[f"{column}__lte"] = high
        return Q(**bounds)
    if condition.match == Match.LIKE:
        return Q(Like(F(column), Value(condition.values[0])))
    return Q(**{column: condition.values[0]})


def conditions_filter(conditions: tuple[Condition, ...], *, level: Level, partition: Partition) -> Q:
    """The WHERE clause of a search whose results are at `level`: every condition holds.

    Only one fuzzy condition (the one with the longest word) picks candidate studies from
    the word index. Another (PatientName and ReferringPhysicianName both fuzzy) is checked
    on the study's folded-name column: PostgreSQL 15 would walk the cross product of two
    candidate arrays on one index column.
    """
    fuzzy = [c for c in conditions if c.match == Match.WORDS and c.attribute.tag_key is None]
    driver = max(fuzzy, key=lambda condition: _literal_length(_longest_word(condition)), default=None)
    match = Q()
    joined: set[str] = set()
    for condition in conditions:
        if condition.match == Match.WORDS and condition.attribute.tag_key is None and condition is not driver:
            attribute = _WORD_ATTRIBUTE[condition.attribute.tag]
            match &= _words_match(
                sorted(set(condition.values)), name=_column(condition, level), study=_STUDY_KEY[level],
                attribute=attribute,
            )
        else:
            match &= condition_filter(condition, level=level, partition=partition)
        if condition.attribute.tag_key is None and condition is not driver and condition.match != Match.MODALITIES:
            joined.add(_column(condition, level).rpartition("__")[0])
    # A condition on the study's or series' columns joins that table: its partition too, so the
    # (partition, column) indexes serve it (the result row's partition alone leaves them unused).
    for table in sorted(joined - {""}):
        match &= Q(**{f"{table}__partition": partition})
    return match
