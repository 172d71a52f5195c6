"""Pure rules on DICOM values: UID syntax (PS3.5 §9.1) and the folded form of a person name.

They live in the plumbing because both sides of the studies/workitems contracts apply them
(instances at STOW and in QIDO-RS, workitems at create and in their search), and neither side
may import the other.
"""

from __future__ import annotations

import re
import unicodedata

# Microsoft's server checks the syntax only (a component may start with 0), plus the 64 limit.
_UID = re.compile(r"[0-9]+(\.[0-9]+)*")


def uid_normalize(value: str) -> str:
    """Trailing spaces and NUL padding are allowed and dropped."""
    return value.rstrip(" \x00")


def uid_is_valid_unpadded(value: str) -> bool:
    """The UID itself, without padding: a value a client typed (a URL, a query, a workitem)."""
    return 0 < len(value) <= 64 and _UID.fullmatch(value) is not None


def uid_is_valid(value: str) -> bool:
    """A UID as a DICOM value holds it: valid once its padding is dropped (`uid_normalize`)."""
    return uid_is_valid_unpadded(uid_normalize(value))


def pn_search_form(value: str) -> str:
    """Case- and accent-folded words of a person name (^ and = separate words), for matching."""
    if value.isascii():  # most names: NFKD leaves ASCII as it is, and it has no combining marks
        stripped = value
    else:
        decomposed = unicodedata.normalize("NFKD", value)
        stripped = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return " ".join(stripped.replace("^", " ").replace("=", " ").casefold().split())
