"""DICOM JSON as rows a person can read: tag, keyword, VR and value, sequences indented."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydicom.datadict import keyword_for_tag

from studies.dicom.dicomjson import tag_label

# Longer values are cut for display (the download link has the whole file).
MAX_VALUE_CHARS = 300


@dataclass(frozen=True)
class AttributeRow:
    depth: int
    tag: str
    keyword: str
    vr: str
    value: str


def _keyword(tag: int) -> str:
    if (tag >> 16) % 2:
        return "(private)"
    return keyword_for_tag(tag) or "(unknown)"


def _tag_text(value: Any) -> str:
    try:
        tag = int(str(value), 16)
    except ValueError:
        return str(value)
    return f"{tag_label(tag)} {_keyword(tag)}"


def _value_text(vr: str, element: dict[str, Any]) -> str:
    if "InlineBinary" in element:
        return f"(binary, {len(element['InlineBinary']) * 3 // 4} bytes)"
    if "BulkDataURI" in element:
        return f"(bulk data at {element['BulkDataURI']})"
    values = element.get("Value", [])
    if vr == "AT":
        # A tag pointer: shown as the tag it names, with that tag's keyword.
        texts = [_tag_text(v) for v in values]
    elif vr == "PN":
        texts = ["=".join(v.get(k, "") for k in ("Alphabetic", "Ideographic", "Phonetic")).rstrip("=") for v in values]
    else:
        texts = ["" if v is None else str(v) for v in values]
    text = "\\".join(texts)
    return text if len(text) <= MAX_VALUE_CHARS else text[: MAX_VALUE_CHARS - 1] + "…"


def attribute_rows(dataset: dict[str, Any], depth: int = 0) -> list[AttributeRow]:
    """Rows in tag order; each sequence item is a marker row followed by its attributes."""
    rows: list[AttributeRow] = []
    for key in sorted(dataset):
        element = dataset[key]
        tag = int(key, 16)
        vr = element.get("vr", "")
        if vr == "SQ":
            items = element.get("Value", [])
            rows.append(AttributeRow(depth, tag_label(tag), _keyword(tag), vr, f"{len(items)} item(s)"))
            for number, item in enumerate(items, start=1):
                rows.append(AttributeRow(depth + 1, "", f"Item {number}", "", ""))
                rows.extend(attribute_rows(item or {}, depth + 1))
        else:
            rows.append(AttributeRow(depth, tag_label(tag), _keyword(tag), vr, _value_text(vr, element)))
    return rows
