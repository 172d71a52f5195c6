"""The query parameters every DICOMweb search shares (QIDO-RS and workitems): `limit`, `offset`,
`fuzzymatching` and `includefield`, case-insensitive names, with Microsoft's 400 messages."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from dicomsvc.errors import InvalidQuery

DEFAULT_LIMIT = 100
MAX_LIMIT = 200
MAX_OFFSET = 2**63 - 1
PARAMETER_INVALID = "The query parameter '{0}' is invalid. {1}"
# The filter errors both searches report the same way.
NOT_QUERYABLE = (
    "Invalid query: AttributeId {0} is not queryable. If the parameter is an attribute keyword, check the "
    "casing as they are case-sensitive. The conformance statement has a list of supported query parameters, "
    "attributes and the levels."
)
DUPLICATE_KEY = (
    "Invalid QIDO-RS query. Duplicate AttributeId '{0}'. Each attribute is only allowed to be specified once."
)
EMPTY_VALUE = "Invalid query: AttributeId '{0}' has empty string value that is not supported."
INCLUDE_ALL_MIXED = "Invalid query: cannot specify included fields in addition to 'all'."
INCLUDE_UNKNOWN = "Invalid query: IncludeField has unknown attribute '{0}'."
RANGE_EMPTY = "Invalid query: specified range is invalid. Both parts in the range cannot be empty."
RANGE_ORDER = (
    "Invalid query: specified range '{0}' is invalid for attribute '{1}'. "
    "The first part {2} should be lesser than or equal to the second part {3}."
)
# No DICOM value holds a NUL (it only pads a UID inside a file), and PostgreSQL's text refuses it.
NUL_IN_VALUE = "Invalid query: the value of '{0}' holds a NUL character (U+0000), which no DICOM value may contain."
INVALID_UID = (
    "Invalid query: specified UID value '{0}' is invalid for attribute '{1}'. "
    "A UID is 1 to 64 characters of digits and '.'."
)

# Sign, then at most 19 significant ASCII digits (a 64-bit integer): int() of a longer number is
# slow and, past 4,300 digits, refused by Python itself.
_INTEGER = re.compile(r"([+-]?)0*([0-9]{1,19})")


# ASCII digits only: str.isdigit() also takes '²', which int() refuses, and int() refuses a
# number of more than 4,300 digits; either was an answer of 500 where it reached int().
_WHOLE_NUMBER = re.compile(r"[0-9]{1,10}")


def whole_number(text: str) -> int | None:
    """A number a client wrote as 1 to 10 ASCII digits (frames, sizes, quality); None for anything else."""
    return int(text) if _WHOLE_NUMBER.fullmatch(text) else None


@dataclass
class SearchParameters:
    limit: int = DEFAULT_LIMIT
    offset: int = 0
    fuzzy: bool = False
    includefield: list[str] = field(default_factory=list)
    # Every other parameter, in request order: (name as sent, its values).
    filters: list[tuple[str, list[str]]] = field(default_factory=list)


def parameter_error(name: str, reason: str) -> InvalidQuery:
    return InvalidQuery(PARAMETER_INVALID.format(name, reason))


def _single(name: str, values: list[str]) -> str:
    if len(values) > 1:
        raise parameter_error(name, "It may be specified only once.")
    return values[0]


def integer_parameter(name: str, field: str, value: str, low: int, high: int) -> int:
    """A whole-number query parameter between `low` and `high`, with Microsoft's model-binding messages."""
    match = _INTEGER.fullmatch(value.strip())
    if not match:
        raise parameter_error(name, f"The value '{value}' is not valid for {field}.")
    number = int(match[1] + match[2])
    if not low <= number <= high:
        raise parameter_error(name, f"The field {field} must be between {low} and {high}.")
    return number


def _boolean(name: str, field: str, value: str) -> bool:
    text = value.strip().lower()
    if text not in ("true", "false"):
        raise parameter_error(name, f"The value '{value}' is not valid for {field}.")
    return text == "true"


def search_parameters_parse(params: Iterable[tuple[str, list[str]]]) -> SearchParameters:
    """Split a search query string (QueryDict.lists()) into its shared parameters and its filters."""
    found = SearchParameters()
    for key, values in params:
        name = key.lower()
        if name == "limit":
            found.limit = integer_parameter("limit", "Limit", _single("limit", values), 1, MAX_LIMIT)
        elif name == "offset":
            found.offset = integer_parameter("offset", "Offset", _single("offset", values), 0, MAX_OFFSET)
        elif name == "fuzzymatching":
            found.fuzzy = _boolean("fuzzymatching", "FuzzyMatching", _single("fuzzymatching", values))
        elif name == "includefield":
            found.includefield.extend(values)
        else:
            if any("\x00" in value for value in values):
                raise InvalidQuery(NUL_IN_VALUE.format(key))
            found.filters.append((key, values))
    return found
