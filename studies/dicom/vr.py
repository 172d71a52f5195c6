"""Value validation per VR (PS3.5 §6.2), as applied at STOW.

Each validator takes one string value and returns an error reason or None.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable

from dicomsvc.dicom_values import uid_is_valid
from studies.dicom.uids import UID_INVALID_REASON

_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1a\x1c-\x1f\x7f]")  # ESC (0x1b) allowed for ISO 2022
_CS = re.compile(r"[A-Z0-9 _]*")
_TM = re.compile(r"(\d{2})(\d{2})?(\d{2})?(\.\d{1,6})?")
_DT = re.compile(r"\d{4}(\d{2}(\d{2}(\d{2}(\d{2}(\d{2}(\.\d{1,6})?)?)?)?)?)?([+-]\d{4})?")
_AS = re.compile(r"\d{3}[DWMY]")
_IS = re.compile(r"[ ]*[+-]?\d+[ ]*")
_DS = re.compile(r"[ ]*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?[ ]*")


def _max_len(limit: int) -> Callable[[str], str | None]:
    def check(value: str) -> str | None:
        if len(value) > limit:
            return f"Value length exceeds maximum length of {limit}."
        if "\\" in value or _CONTROL.search(value):
            return "Value contains invalid character."
        return None

    return check


def parse_da(value: str) -> dt.date | None:
    value = value.strip()
    if len(value) != 8 or not value.isdigit():
        return None
    try:
        return dt.date(int(value[:4]), int(value[4:6]), int(value[6:]))
    except ValueError:
        return None


def _da(value: str) -> str | None:
    return None if parse_da(value) is not None else "Value is not a valid date (yyyyMMdd)."


def _tm(value: str) -> str | None:
    match = _TM.fullmatch(value.strip())
    if not match:
        return "Value is not a valid time (HHmmss.FFFFFF)."
    hh, mm, ss = match.group(1), match.group(2), match.group(3)
    if int(hh) > 23 or (mm and int(mm) > 59) or (ss and int(ss) > 60):
        return "Value is not a valid time (HHmmss.FFFFFF)."
    return None


def _dt(value: str) -> str | None:
    return None if _DT.fullmatch(value.strip()) else "Value is not a valid date time."


def _cs(value: str) -> str | None:
    if len(value) > 16:
        return "Value length exceeds maximum length of 16."
    if not _CS.fullmatch(value):
        return "Value contains invalid character."
    return None


def _pn(value: str) -> str | None:
    groups = value.split("=")
    if len(groups) > 3:
        return "Value contains more than 3 component groups."
    for group in groups:
        if len(group) > 64:
            return "Value exceeds maximum length of 64 characters per component group."
        if len(group.split("^")) > 5:
            return "Value contains more than 5 components."
    if "\\" in value or _CONTROL.search(value):
        return "Value contains invalid character."
    return None


def _ui(value: str) -> str | None:
    return None if uid_is_valid(value) else UID_INVALID_REASON


def _as(value: str) -> str | None:
    return None if _AS.fullmatch(value) else "Value is not a valid age string (nnnD|W|M|Y)."


def _is(value: str) -> str | None:
    if len(value) > 12 or not _IS.fullmatch(value):
        return "Value is not a valid integer string."
    if not -(2**31) <= int(value) <= 2**31 - 1:
        return "Value is out of range for an integer string."
    return None


def _ds(value: str) -> str | None:
    if len(value) > 16 or not _DS.fullmatch(value):
        return "Value is not a valid decimal string."
    return None


VALIDATORS: dict[str, Callable[[str], str | None]] = {
    "AE": _max_len(16),
    "AS": _as,
    "CS": _cs,
    "DA": _da,
    "DS": _ds,
    "DT": _dt,
    "IS": _is,
    "LO": _max_len(64),
    "PN": _pn,
    "SH": _max_len(16),
    "TM": _tm,
    "UI": _ui,
}


def vr_validate(vr: str, value: str) -> str | None:
    """Reason the value is invalid for the VR, or None. Empty values are always valid."""
    if value == "":
        return None
    validator = VALIDATORS.get(vr)
    if validator is None:
        return None
    return validator(value.rstrip("\x00") if vr != "UI" else value)
