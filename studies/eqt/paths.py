"""Tag paths of extended query tags: 8 hex digits or a keyword, as in the API's `{path}`."""

from __future__ import annotations

import re

from pydicom.datadict import tag_for_keyword

from dicomsvc.errors import ExtendedQueryTagInvalid

_HEX = re.compile(r"[0-9A-Fa-f]{8}")
INVALID_TAG = "The extended query tag '{0}' is invalid as it cannot be parsed into a valid Dicom Tag."


def tag_path_parse(text: str) -> int:
    """The tag named by `text`; ExtendedQueryTagInvalid (400) when it names none."""
    value = text.strip()
    if _HEX.fullmatch(value):
        return int(value, 16)
    tag = tag_for_keyword(value) if value.isidentifier() else None
    if tag is None:
        raise ExtendedQueryTagInvalid(INVALID_TAG.format(text))
    return int(tag)


def tag_path(tag: int) -> str:
    return f"{tag:08X}"


def is_private(tag: int) -> bool:
    return bool((tag >> 16) & 1)


def is_private_creator(tag: int) -> bool:
    """A private identification code element (gggg,0010-00FF) of an odd group."""
    return is_private(tag) and 0x0010 <= tag & 0xFFFF <= 0x00FF
