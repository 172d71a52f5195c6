"""Turning parsed conditions into ORM filters over the indexed columns (never the metadata).

Each condition becomes one WHERE term on the model of the result level; conditions on a
parent level reach it through the foreign key (`study__...`, `series__...`), except the
study and series UIDs that instance rows carry themselves.
"""

from __future__ import annotations

from functools import reduce
from operator import or_
from typing import Any

from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Case, F, Lookup, Max, Q, QuerySet, Value, When
from django.db.models.functions import Upper
from django.db.models.lookups import Exact
from django.db.models.sql.compiler import SQLCompiler

from partitions.models import Partition
from studies.models import PersonNameAttribute, PersonNameWord, Series
from studies.search.attributes import SERIES_INSTANCE_UID, STUDY_INSTANCE_UID, Kind, Level
from studies.search.query import Condition, Match

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

    def as_sql(self, compiler: SQLCompiler, connection: BaseDatabaseWrapper) -> tuple[str, list[Any]]:
        lhs, lhs_params = self.process_lhs(compiler, connection)
        rhs, rhs_params = self.process_rhs(compiler, connection)
        sql = f"{lhs} LIKE {rhs}"
        if connection.vendor != "postgresql":
            sql += " ESCAPE '\\'"
        return sql, [*lhs_params, *rhs_params]


def _string_match(column: str, match: str, value: str) -> Q:
    # Case-insensitive like Microsoft's collation; UPPER on both sides keeps one backend's rules.
    if match == Match.LIKE:
        return Q(Like(Upper(column), Upper(Value(value))))
    return Q(Exact(Upper(column), Upper(Value(value))))


def _studies_with_words(condition: Condition, partition: Partition) -> QuerySet[Any]:
    """Ids of studies where each word pattern matches some word of the name.

    One pass over the words table: the index ranges of all prefixes (OR), grouped by study,
    keeping the studies where every prefix matched. Its cost follows the number of matching
    words, not the size of the archive. (Measured against an INTERSECT of the ranges and a
    per-study EXISTS: PostgreSQL plans both worse, up to a scan of every study.)
    """
    patterns = condition.values
    words = PersonNameWord.objects.filter(
        reduce(or_, (Q(Like(F("word"), Value(pattern))) for pattern in patterns)),
        partition=partition,
        attribute=_WORD_ATTRIBUTE[condition.attribute.tag],
    )
    if len(patterns) == 1:
        return words.values("study_id")
    matched = {
        f"word_{index}": Max(Case(When(Like(F("word"), Value(pattern)), then=Value(1)), default=Value(0)))
        for index, pattern in enumerate(patterns)
    }
    return words.values("study_id").annotate(**matched).filter(**{name: 1 for name in matched}).values("study_id")


def _column(condition: Condition, level: Level) -> str:
    attribute = condition.attribute
    if level is Level.INSTANCE and attribute.tag in _INSTANCE_OWN:
        return _INSTANCE_OWN[attribute.tag]
    return _PATHS[level][attribute.level] + attribute.column


def condition_filter(condition: Condition, *, level: Level, partition: Partition) -> Q:
    """The WHERE term of one condition for a search whose results are at `level`."""
    attribute = condition.attribute
    if attribute.kind is Kind.MODALITIES:
        matches = reduce(or_, (_string_match("modality", match, value) for match, value in condition.values))
        series = Series.objects.filter(matches, partition=partition, num_instances__gt=0).values("study_id")
        return Q(**{f"{_STUDY_KEY[level]}__in": series})
    if condition.match == Match.WORDS:
        return Q(**{f"{_STUDY_KEY[level]}__in": _studies_with_words(condition, partition)})

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
    return reduce(
        lambda left, right: left & right,
        (condition_filter(condition, level=level, partition=partition) for condition in conditions),
        Q(),
    )
