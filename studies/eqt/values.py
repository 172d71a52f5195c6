"""What an extended query tag indexes: the first value of its attribute, checked against its VR
and put in the form the value table compares (`studies.eqt.models.ExtendedQueryTagValue`).

Values are read from an instance's DICOM JSON (the stored `metadata`), the same at STOW and
in the reindex. A private tag is read only where its block is reserved by the tag's private
creator. (Under implicit VR an unknown private attribute is UN, which the metadata leaves out
with the other bulk data: it is not indexed.)
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from dicomsvc.dicom_values import pn_search_form
from studies.dicom.vr import vr_validate

STRING_VRS = frozenset({"AE", "AS", "CS", "LO", "SH", "UI"})
DATE_VRS = frozenset({"DA", "DT", "TM"})
INTEGER_VRS = frozenset({"IS", "SL", "SS", "UL", "US"})
DECIMAL_VRS = frozenset({"DS", "FL", "FD"})
NUMBER_VRS = INTEGER_VRS | DECIMAL_VRS
SUPPORTED_VRS = STRING_VRS | DATE_VRS | NUMBER_VRS | {"PN"}

_BINARY = frozenset({"FL", "FD", "SL", "SS", "UL", "US"})  # JSON numbers in the metadata
_RANGES = {"SL": (-(2**31), 2**31 - 1), "SS": (-(2**15), 2**15 - 1), "UL": (0, 2**32 - 1), "US": (0, 2**16 - 1)}
_DT = re.compile(r"(\d{4})(\d{2})?(\d{2})?(\d{2})?(\d{2})?(\d{2})?(\.\d{1,6})?([+-]\d{4})?")
_TM = re.compile(r"(\d{2})(\d{2})?(\d{2})?(\.\d{1,6})?")

MISMATCH_VR = "The extended query tag '{0}' is expected to have VR '{1}' but has '{2}' in file."


@dataclass(frozen=True)
class IndexValue:
    """A value in the value table's form: `text` or `number`."""

    text: str | None = None
    number: float | None = None


@dataclass(frozen=True)
class ReadValue:
    """What an instance gives for one tag: a value, nothing (absent or empty), or why it cannot be indexed."""

    value: IndexValue | None = None
    error: str | None = None
    multiple: bool = False


def _fraction(text: str | None) -> str:
    return (text or ".")[1:].ljust(6, "0")


def datetime_key(text: str) -> str | None:
    """A DT value as `yyyyMMddHHmmss.ffffff` (missing parts at their minimum, offset dropped)."""
    match = _DT.fullmatch(text.strip())
    if match is None:
        return None
    year, month, day, hour, minute, second, fraction, _offset = match.groups()
    month, day = month or "01", day or "01"
    if not ("01" <= month <= "12" and "01" <= day <= "31" and (hour or "00") <= "23" and (minute or "00") <= "59"):
        return None
    if (second or "00") > "60":
        return None
    return f"{year}{month}{day}{hour or '00'}{minute or '00'}{second or '00'}.{_fraction(fraction)}"


def datetime_has_offset(text: str) -> bool:
    match = _DT.fullmatch(text.strip())
    return match is not None and match.group(8) is not None


def time_key(text: str) -> str | None:
    """A TM value as `HHmmss.ffffff` (missing parts at their minimum)."""
    match = _TM.fullmatch(text.strip())
    if match is None:
        return None
    hour, minute, second, fraction = match.groups()
    if hour > "23" or (minute or "00") > "59" or (second or "00") > "60":
        return None
    return f"{hour}{minute or '00'}{second or '00'}.{_fraction(fraction)}"


def _text(value: Any) -> str:
    if isinstance(value, dict):  # a PN: its component groups, as in the encoded value
        groups = [value.get(key, "") for key in ("Alphabetic", "Ideographic", "Phonetic")]
        while groups and not groups[-1]:
            groups.pop()
        return "=".join(groups)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _index_value(vr: str, value: Any) -> IndexValue | str | None:
    """The index form of one value, None when empty, or the reason it is invalid for `vr`."""
    if vr in _BINARY:
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            return "Value is not a number."
        if vr in _RANGES and (not float(value).is_integer() or not _RANGES[vr][0] <= value <= _RANGES[vr][1]):
            return f"Value is out of range for VR {vr}."
        return IndexValue(number=float(value))
    text = _text(value).strip(" \x00")
    if not text:
        return None
    reason = vr_validate(vr, text)
    if reason:
        return reason
    if vr == "PN":
        return IndexValue(text=pn_search_form(text)) if pn_search_form(text) else None
    if vr == "DT":
        key = datetime_key(text)
        return IndexValue(text=key) if key else "Value is not a valid date time."
    if vr == "TM":
        key = time_key(text)
        return IndexValue(text=key) if key else "Value is not a valid time (HHmmss.FFFFFF)."
    if vr in NUMBER_VRS:
        return IndexValue(number=float(text))
    return IndexValue(text=text.upper())


def private_creator_key(tag: int) -> str:
    """The DICOM JSON key of the private creator element reserving `tag`'s block."""
    return f"{tag >> 16:04X}00{(tag >> 8) & 0xFF:02X}"


def _creator_matches(metadata: dict[str, Any], tag: int, private_creator: str) -> bool:
    element = metadata.get(private_creator_key(tag)) or {}
    values = element.get("Value") or []
    return bool(values) and str(values[0]).strip() == private_creator


def value_read(metadata: dict[str, Any], *, tag: int, vr: str, private_creator: str, label: str) -> ReadValue:
    """The first value of the attribute `tag` in `metadata` (DICOM JSON), as the index keeps it."""
    if private_creator and not _creator_matches(metadata, tag, private_creator):
        return ReadValue()
    element = metadata.get(f"{tag:08X}")
    if not element:
        return ReadValue()
    file_vr = element.get("vr", vr)
    if file_vr != vr:
        return ReadValue(error=MISMATCH_VR.format(label, vr, file_vr))
    values: list[Any] = element.get("Value") or []
    if not values:
        return ReadValue()
    result = _index_value(vr, values[0])
    if isinstance(result, str):
        return ReadValue(error=result, multiple=len(values) > 1)
    return ReadValue(value=result, multiple=len(values) > 1)
