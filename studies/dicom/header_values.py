"""Decoding one element's value bytes into what pydicom's reader would give (`studies.dicom.header`).

Values come out twice: as pydicom's str() gives them (the top-level values the store path
reads) and as DICOM JSON values. A value pydicom would coerce or decode differently (escape
sequences, numbers it would reformat, an empty PN value) raises `GiveUp`: the whole file is
then read by pydicom instead.
"""

from __future__ import annotations

import functools
import re
import struct
from typing import Any

from studies.dicom.dicomjson import VALIDATED_VRS
from studies.dicom.vr import vr_validate

NUMBERS = {"US": "H", "SS": "h", "UL": "L", "SL": "l", "FL": "f", "FD": "d", "UV": "Q", "SV": "q"}
TEXT_SPLIT = frozenset({"SH", "LO", "UC"})  # character-set text with backslash-separated values
TEXT_SINGLE = frozenset({"ST", "LT", "UT"})  # character-set text, one value
ASCII_SPLIT = frozenset({"CS", "AS", "DA", "TM", "DT"})
CHARSET_VRS = TEXT_SPLIT | TEXT_SINGLE | {"PN"}
_DS = re.compile(r" *[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)? *")
_IS = re.compile(r" *[+-]?[0-9]+ *")


class GiveUp(Exception):
    """The file needs pydicom: an encoding or value this reader does not reproduce exactly."""


def value_decode(vr: str, raw: bytes, encoding: str, validate: bool) -> tuple[tuple[Any, ...], tuple[Any, ...], str]:
    """(values as pydicom's str() gives them, JSON values, first validation failure or "")."""
    strings: tuple[Any, ...]
    json_values: tuple[Any, ...]
    if vr in NUMBERS:
        size = struct.calcsize("<" + NUMBERS[vr])
        if len(raw) % size:
            raise GiveUp("number length")
        return (), struct.unpack(f"<{len(raw) // size}{NUMBERS[vr]}", raw), ""
    if vr == "AT":
        if len(raw) % 4:
            raise GiveUp("AT length")
        pairs = struct.unpack(f"<{len(raw) // 2}H", raw)
        return (), tuple(f"{pairs[i] << 16 | pairs[i + 1]:08X}" for i in range(0, len(pairs), 2)), ""
    if vr == "PN":
        strings, json_values = _person_names(raw, encoding)
    else:
        strings = json_values = tuple(_strings(vr, raw, encoding))
        if vr == "DS":
            json_values = tuple(float(v) for v in strings)
        elif vr == "IS":
            json_values = tuple(int(v) for v in strings)
    if validate and vr in VALIDATED_VRS:
        for value in strings:
            reason = vr_validate(vr, value)
            if reason:
                return strings, json_values, reason
    return strings, json_values, ""


# A CT series repeats most of its header values from instance to instance; decoding and
# validating each distinct short value once per process saves a large share of reading a
# header. Short values only, so the cache stays small (16384 x 256 bytes at most).
CACHED_VALUE_BYTES = 256
value_decode_cached = functools.lru_cache(maxsize=16384)(value_decode)


def _text(raw: bytes, encoding: str) -> str:
    if b"\x1b" in raw:
        raise GiveUp("escape sequences")
    try:
        return raw.decode(encoding)
    except UnicodeDecodeError:
        raise GiveUp("undecodable text") from None


def _strings(vr: str, raw: bytes, encoding: str) -> list[str]:
    """Values as pydicom's str() gives them; [] for an empty element."""
    if vr in TEXT_SPLIT:
        values = [v.rstrip("\x00 ") for v in _text(raw, encoding).split("\\")]
    elif vr in TEXT_SINGLE:
        values = [_text(raw, encoding).rstrip("\x00 ")]
    elif vr == "UR":
        values = [raw.decode("latin_1").rstrip()]
    elif vr == "AE":
        values = [v.strip() for v in raw.decode("latin_1").split("\\")]
    elif vr == "UI":
        values = raw.decode("latin_1").rstrip("\x00 ").split("\\")
    elif vr in ASCII_SPLIT:
        values = raw.decode("latin_1").rstrip(" \x00").split("\\")
    elif vr == "DS":
        values = raw.decode("latin_1").strip().rstrip(" \x00").split("\\")
        return _numeric_strings(values, _DS)
    elif vr == "IS":
        values = raw.decode("latin_1").rstrip(" \x00").split("\\")
        return _numeric_strings(values, _IS)
    else:
        raise GiveUp(f"VR {vr}")
    return [] if values == [""] else values


def _numeric_strings(values: list[str], pattern: re.Pattern[str]) -> list[str]:
    if values == [""]:
        return []
    if not all(pattern.fullmatch(v) for v in values):
        raise GiveUp("number pydicom would coerce")
    return [v.strip() for v in values]


def _person_names(raw: bytes, encoding: str) -> tuple[tuple[str, ...], tuple[dict[str, str], ...]]:
    stripped = raw.rstrip(b"\x00 ")
    if not stripped:
        if raw:
            raise GiveUp("blank PN")
        return (), ()
    strings: list[str] = []
    names: list[dict[str, str]] = []
    for value in _text(stripped, encoding).split("\\"):
        groups = value.split("=")
        while groups and not groups[-1]:
            groups.pop()
        if not groups:
            raise GiveUp("empty PN value")
        name = {"Alphabetic": groups[0]}
        if len(groups) > 1:
            name["Ideographic"] = groups[1]
        if len(groups) > 2:
            name["Phonetic"] = groups[2]
        names.append(name)
        strings.append("=".join(groups))
    return tuple(strings), tuple(names)
