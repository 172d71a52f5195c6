"""Building QIDO-RS result datasets: stored metadata narrowed to the return attributes.

Attribute values are the stored DICOM JSON of one instance (the newest visible one for a
study or series result), served as stored: already UTF-8 whatever the SpecificCharacterSet
of the original file. Counts and ModalitiesInStudy come from the index counters instead.
"""

from __future__ import annotations

from typing import Any

from studies.dicom.dicomjson import json_dumps, json_loads_fast
from studies.eqt.models import TagStatus
from studies.eqt.tags import TagDef, tags_cached
from studies.search.attributes import (
    ALL_COMPUTED,
    MODALITIES_IN_STUDY,
    NUMBER_OF_SERIES_RELATED_INSTANCES,
    NUMBER_OF_STUDY_RELATED_INSTANCES,
    NUMBER_OF_STUDY_RELATED_SERIES,
    PROJECTION_TAGS,
)

_PROJECTION_KEYS = frozenset(f"{tag:08X}" for tag in PROJECTION_TAGS)
# The last tag list seen and its keys: `tags_cached` hands out one tuple until it reloads.
_extended_keys: tuple[tuple[TagDef, ...], frozenset[str], frozenset[str]] = ((), _PROJECTION_KEYS, _PROJECTION_KEYS)


def _keys() -> tuple[frozenset[str], frozenset[str]]:
    """(keys a projection holds, keys every stored projection is known to hold)."""
    global _extended_keys
    tags = tags_cached()
    known = _extended_keys
    if known[0] is not tags:
        written = _PROJECTION_KEYS | {f"{tag.tag:08X}" for tag in tags}
        served = _PROJECTION_KEYS | {f"{tag.tag:08X}" for tag in tags if tag.status == TagStatus.READY}
        known = _extended_keys = (tags, written, served)
    return known[1], known[2]


def projection_keys(*, extra: tuple[TagDef, ...] = ()) -> frozenset[str]:
    """The keys a projection written now holds: the core searchable attributes and those of
    every extended query tag (and of `extra`, the tags a reindex adds). A search filtering on
    a tag returns its attribute, and reading the whole metadata of each result for it cost
    more than the search itself."""
    keys = _keys()[0]
    return keys | {f"{tag.tag:08X}" for tag in extra} if extra else keys


def search_projection(metadata: dict[str, Any], *, keys: frozenset[str] | None = None) -> str:
    """The `Instance.search_metadata` text of an instance's DICOM JSON (keys kept in order)."""
    keys = projection_keys() if keys is None else keys
    return json_dumps({key: value for key, value in metadata.items() if key in keys})


def projection_serves(keys: list[str]) -> bool:
    """Whether every stored attribute a search returns is in the projection of every row.

    A tag's attribute is once the tag is ready: its reindex rewrote the projection of every
    instance stored before every process knew the tag, and each store since wrote it.
    """
    return _PROJECTION_KEYS.issuperset(keys) or _keys()[1].issuperset(keys)


def stored_keys(return_tags: frozenset[int]) -> list[str]:
    """DICOM JSON keys to copy from stored metadata."""
    return sorted(f"{tag:08X}" for tag in return_tags - ALL_COMPUTED)


def computed_elements(
    return_tags: frozenset[int],
    *,
    modalities: str | None = None,
    study_series: int | None = None,
    study_instances: int | None = None,
    series_instances: int | None = None,
) -> dict[str, dict[str, Any]]:
    """The requested computed attributes among those known for this row."""
    out: dict[str, dict[str, Any]] = {}
    if MODALITIES_IN_STUDY in return_tags and modalities is not None:
        values = [value for value in modalities.split("\\") if value]
        out[f"{MODALITIES_IN_STUDY:08X}"] = {"vr": "CS", "Value": values} if values else {"vr": "CS"}
    counts = {
        NUMBER_OF_STUDY_RELATED_SERIES: study_series,
        NUMBER_OF_STUDY_RELATED_INSTANCES: study_instances,
        NUMBER_OF_SERIES_RELATED_INSTANCES: series_instances,
    }
    for tag, count in counts.items():
        if tag in return_tags and count is not None:
            out[f"{tag:08X}"] = {"vr": "IS", "Value": [count]}
    return out


def _without_bulk_uris(dataset: dict[str, Any]) -> dict[str, Any]:
    """`dataset` without the attributes given by BulkDataURI, at any depth."""
    out = {}
    for key, element in dataset.items():
        if "BulkDataURI" in element:
            continue
        if element.get("vr") == "SQ" and element.get("Value"):
            element = {**element, "Value": [_without_bulk_uris(item) for item in element["Value"]]}
        out[key] = element
    return out


def result_dataset(*, metadata: str | None, keys: list[str], computed: dict[str, dict[str, Any]]) -> dict[str, Any]:
    stored = json_loads_fast(metadata) if metadata else {}
    out = {key: stored[key] for key in keys if key in stored}
    if metadata and "BulkDataURI" in metadata:
        # Search results carry no bulk data: the stored URIs are paths within an instance, and a
        # study or series result is no instance to complete them with.
        out = _without_bulk_uris(out)
    out.update(computed)
    return dict(sorted(out.items()))
