"""Query-string parsing for the change-feed endpoints.

Names are matched case-insensitively and, as ASP.NET model binding does, the first value
of a repeated name wins; unknown names are ignored. A bad value is a 400 naming it:
`The query parameter '{name}' is invalid. {reason}` (docs/changefeed.md).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from django.http import QueryDict

from dicomsvc.errors import BadRequest

MAX_LONG = 2**63 - 1
V1_LIMIT = (1, 100, 10)  # minimum, maximum, default
V2_LIMIT = (1, 200, 100)

# Sign, then at most 19 significant digits: int() of a longer number is slow and, past 4,300
# digits, refused by Python itself.
_INTEGER = re.compile(r"([+-]?)0*([0-9]{1,19})")
# '+' in a query string decodes to a space; "2024-01-01T10:00:00 01:00" meant "+01:00".
_SPACE_OFFSET = re.compile(r"(?<=\d) (\d{2}:?\d{2})$")


class InvalidQueryParameter(BadRequest):
    def __init__(self, name: str, reason: str) -> None:
        super().__init__(f"The query parameter '{name}' is invalid. {reason}")


@dataclass(frozen=True)
class FeedQuery:
    offset: int
    limit: int
    include_metadata: bool
    start: dt.datetime | None = None
    end: dt.datetime | None = None


def _first_values(query: QueryDict) -> dict[str, str]:
    values: dict[str, str] = {}
    for name in query:
        values.setdefault(name.lower(), query.getlist(name)[0])
    return values


def _field(name: str) -> str:
    return name[0].upper() + name[1:]


def _integer(values: dict[str, str], name: str, *, minimum: int, maximum: int, default: int) -> int:
    raw = values.get(name.lower())
    if raw is None:
        return default
    match = _INTEGER.fullmatch(raw.strip())
    if not match or not -MAX_LONG - 1 <= int(match[1] + match[2]) <= MAX_LONG:
        raise InvalidQueryParameter(name, f"The value '{raw}' is not valid for {_field(name)}.")
    number = int(match[1] + match[2])
    if not minimum <= number <= maximum:
        raise InvalidQueryParameter(name, f"The field {_field(name)} must be between {minimum} and {maximum}.")
    return number


def _boolean(values: dict[str, str], name: str, *, default: bool) -> bool:
    raw = values.get(name.lower())
    if raw is None:
        return default
    lowered = raw.strip().lower()
    if lowered not in ("true", "false"):
        raise InvalidQueryParameter(name, f"The value '{raw}' is not valid for {_field(name)}.")
    return lowered == "true"


def _time(values: dict[str, str], name: str) -> dt.datetime | None:
    raw = values.get(name.lower())
    if raw is None:
        return None
    text = _SPACE_OFFSET.sub(r"+\1", raw.strip())
    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError:
        raise InvalidQueryParameter(name, f"The value '{raw}' is not valid for {_field(name)}.") from None
    if value.tzinfo is None:
        raise InvalidQueryParameter(name, "Date and time value must specify a time zone.")
    return value


def round_trip(value: dt.datetime) -> str:
    """.NET's round-trip ("O") format, as Microsoft's messages print times."""
    offset = value.strftime("%z")
    return f"{value:%Y-%m-%dT%H:%M:%S}.{value.microsecond:06d}0{offset[:3]}:{offset[3:]}"


def feed_query_parse(query: QueryDict, *, api_version: int) -> FeedQuery:
    """`GET /changefeed`: v1 offset/limit by sequence, v2 adds the startTime/endTime window."""
    values = _first_values(query)
    minimum, maximum, default = V1_LIMIT if api_version < 2 else V2_LIMIT
    offset = _integer(values, "offset", minimum=0, maximum=MAX_LONG, default=0)
    limit = _integer(values, "limit", minimum=minimum, maximum=maximum, default=default)
    include_metadata = _boolean(values, "includeMetadata", default=True)
    if api_version < 2:
        return FeedQuery(offset=offset, limit=limit, include_metadata=include_metadata)
    start = _time(values, "startTime")
    end = _time(values, "endTime")
    if start is not None and end is not None and start >= end:
        raise BadRequest(
            f"The start time '{round_trip(start)}' must occur strictly before the end time '{round_trip(end)}'."
        )
    return FeedQuery(offset=offset, limit=limit, include_metadata=include_metadata, start=start, end=end)


def latest_query_parse(query: QueryDict) -> bool:
    """`GET /changefeed/latest`: only includeMetadata (default true)."""
    return _boolean(_first_values(query), "includeMetadata", default=True)
