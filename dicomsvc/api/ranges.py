"""HTTP byte ranges (RFC 9110 §14): one `Range: bytes=...` range, resolved against a length."""

from __future__ import annotations

import re
from dataclasses import dataclass

from dicomsvc.errors import RangeNotSatisfiable

_SINGLE = re.compile(r"\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*", re.IGNORECASE)


@dataclass(frozen=True)
class ByteRange:
    """`first`-`last` (last None: to the end), or the final `suffix` bytes (first None)."""

    first: int | None
    last: int | None
    suffix: int | None = None

    def resolve(self, length: int) -> tuple[int, int]:
        """(start, stop) of the bytes to send; RangeNotSatisfiable when none of them exists."""
        if self.suffix is not None:
            if self.suffix == 0 or length == 0:
                raise RangeNotSatisfiable(length)
            return max(length - self.suffix, 0), length
        assert self.first is not None
        if self.first >= length:
            raise RangeNotSatisfiable(length)
        stop = length if self.last is None else min(self.last + 1, length)
        return self.first, stop


def byte_range_parse(header: str) -> ByteRange | None:
    """The one range of a `Range` header, or None: no header, several ranges, another unit or bad syntax.

    RFC 9110 §14.2 lets a server ignore a Range it does not support; then the whole value is
    sent with 200, which every client handles.
    """
    match = _SINGLE.fullmatch(header) if header else None
    if match is None:
        return None
    first, last = match.groups()
    if not first and not last:
        return None
    if not first:
        return ByteRange(None, None, suffix=int(last))
    if last and int(last) < int(first):
        return None  # invalid: ignored, as §14.1.1 requires
    return ByteRange(int(first), int(last) if last else None)
