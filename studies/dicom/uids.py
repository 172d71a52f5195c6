"""DICOM UID rules as Microsoft's server applies them (PS3.5 §9.1, plus its own length limit)."""

from __future__ import annotations

from dicomsvc.dicom_values import uid_is_valid_unpadded
from dicomsvc.errors import InvalidUid


def uid_require(*, name: str, value: str) -> str:
    """A UID a client typed (a URL segment, an export source): the UID itself, nothing else.

    Padding belongs to a value's encoding inside a DICOM file; in a URL a trailing NUL or space
    would make one instance answer to several addresses."""
    if not uid_is_valid_unpadded(value):
        raise InvalidUid(name, value)
    return value


UID_INVALID_REASON = (
    "DICOM Identifier is invalid. Value length should not exceed the maximum length of 64 characters. "
    "Value should contain characters in '0'-'9' and '.'. Each component must start with non-zero number."
)
