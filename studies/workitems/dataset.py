"""DICOM JSON (PS3.18 Annex F) datasets of workitems: the request body, and attribute access.

A dataset is the JSON object itself, keyed by 8-hex tags; nothing is converted to pydicom
objects, so what a client sent is what is stored and returned.
"""

from __future__ import annotations

import json
import re
from typing import Any

from pydicom.datadict import dictionary_VR, tag_for_keyword

from dicomsvc.api.json_body import json_nul_refuse
from dicomsvc.errors import InvalidRequestBody

Dataset = dict[str, Any]

_TAG_KEY = re.compile(r"[0-9A-Fa-f]{8}")
_VRS = frozenset(
    "AE AS AT CS DA DS DT FD FL IS LO LT OB OD OF OL OV OW PN SH SL SQ SS ST SV TM UC UI UL UN UR US UT UV".split()
)
# VRs whose values are text: an all-blank value counts as empty (as Microsoft checks it).
TEXT_VRS = frozenset("AE AS CS DA DS DT IS LO LT PN SH ST TM UC UI UR UT".split())


def key(keyword: str) -> str:
    """The DICOM JSON key of an attribute keyword (`PatientName` -> `00100010`)."""
    tag = tag_for_keyword(keyword)
    if tag is None:
        raise KeyError(keyword)
    return f"{tag:08X}"


def vr_of(keyword: str) -> str:
    return str(dictionary_VR(int(key(keyword), 16)))


def tag_text(dataset_key: str) -> str:
    """`(gggg,eeee)`, the form Microsoft's messages name a tag in."""
    return f"({dataset_key[:4].lower()},{dataset_key[4:].lower()})"


def _check_dataset(value: Any) -> Dataset:
    if not isinstance(value, dict):
        raise InvalidRequestBody()
    checked: Dataset = {}
    for tag, element in value.items():
        if not isinstance(tag, str) or not _TAG_KEY.fullmatch(tag) or not isinstance(element, dict):
            raise InvalidRequestBody()
        vr = element.get("vr")
        values = element.get("Value", [])
        if vr not in _VRS or not isinstance(values, list):
            raise InvalidRequestBody()
        if vr == "SQ":
            element = {**element, "Value": [_check_dataset(item or {}) for item in values]}
        checked[tag.upper()] = element
    return checked


def body_dataset(*, body: bytes) -> Dataset:
    """The first dataset of a request body holding a DICOM JSON array (an object is taken too)."""
    try:
        parsed = json.loads(body or b"[]")
    except ValueError:
        raise InvalidRequestBody() from None
    json_nul_refuse(parsed)
    if isinstance(parsed, list):
        if not parsed:
            raise InvalidRequestBody()
        parsed = parsed[0]
    return _check_dataset(parsed)


def values(dataset: Dataset, name: str) -> list[Any]:
    element = dataset.get(key(name))
    return list(element.get("Value", [])) if element else []


def text(dataset: Dataset, name: str) -> str:
    """The first value as text ('' when absent); a person name's alphabetic group."""
    found = values(dataset, name)
    first = found[0] if found else None
    if isinstance(first, dict):
        first = first.get("Alphabetic", "")
    return "" if first is None else str(first).strip()


def first_item(dataset: Dataset, name: str) -> Dataset:
    """The first item of a sequence ({} when it has none)."""
    items = values(dataset, name)
    return items[0] if items and isinstance(items[0], dict) else {}


def put(dataset: Dataset, name: str, *items: Any) -> None:
    """Set an attribute to `items` (no items: present and empty)."""
    element: dict[str, Any] = {"vr": vr_of(name)}
    if items:
        element["Value"] = list(items)
    dataset[key(name)] = element


def ordered(dataset: Dataset) -> Dataset:
    """The dataset with attributes in tag order at every level, as DICOM JSON is written."""
    out: Dataset = {}
    for tag in sorted(dataset):
        element = dataset[tag]
        if element.get("vr") == "SQ" and element.get("Value"):
            element = {**element, "Value": [ordered(item) for item in element["Value"]]}
        out[tag] = element
    return out


def dataset_text(dataset: Dataset) -> str:
    return json.dumps(ordered(dataset), ensure_ascii=False, separators=(",", ":"))
