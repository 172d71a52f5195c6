"""DICOM UID rules as Microsoft's server applies them (PS3.5 §9.1, plus its own length limit)."""

from __future__ import annotations

import re

from dicomsvc.errors import InvalidUid

_UID_RE = re.compile(r"[0-9]+(\.[0-9]+)*")


def uid_normalize(value: str) -> str:
    """Trailing spaces and NUL padding are allowed and dropped."""
    return value.rstrip(" \x00")


def uid_is_valid(value: str) -> bool:
    value = uid_normalize(value)
    return 0 < len(value) <= 64 and _UID_RE.fullmatch(value) is not None


def uid_require(*, name: str, value: str) -> str:
    """A UID a client typed (a URL segment, an export source): the UID itself, nothing else.

    Padding belongs to a value's encoding inside a DICOM file; in a URL a trailing NUL or space
    would make one instance answer to several addresses."""
    if not (0 < len(value) <= 64 and _UID_RE.fullmatch(value)):
        raise InvalidUid(name, value)
    return value


UID_INVALID_REASON = (
    "DICOM Identifier is invalid. Value length should not exceed the maximum length of 64 characters. "
    "Value should contain characters in '0'-'9' and '.'. Each component must start with non-zero number."
)
