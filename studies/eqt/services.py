"""Writes of extended query tag definitions: add (validated as Microsoft's server does), change
the query status, delete. The reindex that makes an added tag ready is an operation
(`operations.reindex`), which calls these and `studies.eqt.reindex`."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from pydicom.datadict import dictionary_VR

from dicomsvc.errors import (
    ExtendedQueryTagBusy,
    ExtendedQueryTagInvalid,
    ExtendedQueryTagsAlreadyExist,
    InvalidRequestBody,
)
from studies.dicom.vr import vr_validate
from studies.eqt.models import ExtendedQueryTag, QueryStatus, TagLevel, TagStatus
from studies.eqt.paths import is_private, is_private_creator, tag_path, tag_path_parse
from studies.eqt.selectors import tag_get
from studies.eqt.tags import tags_cache_clear
from studies.eqt.values import SUPPORTED_VRS
from studies.search.attributes import SEARCHABLE

# Microsoft's ExtendedQueryTag:MaxAllowedCount.
MAX_TAGS = 128

MISSING_TAGS = "The extended query tag(s) is missing."
PROPERTY_MISSING = "The Dicom Tag Property {0} must be specified and must not be null, empty or whitespace."
MISSING_LEVEL = "The level for extended query tag '{0}' is missing."
INVALID_LEVEL = "Input Dicom Tag Level '{0}' is invalid. It must have value 'Study', 'Series' or 'Instance'."
SEQUENCE = "Sequential dicom tags are currently not supported."
PRIVATE_CREATOR_NOT_EMPTY = "The private creator is not empty for standard tag '{0}'."
PRIVATE_CREATOR_NOT_EMPTY_FOR_CODE = "The private creator is not empty for private identification code '{0}'."
MISSING_PRIVATE_CREATOR = "The private creator for private tag '{0}' is missing."
PRIVATE_CREATOR_INVALID = "The private creator for tag '{0}' is not a valid LO attribute."
MISSING_VR = "The vr for tag '{0}' is missing."
INVALID_VR = "The VR code '{0}' for tag '{1}' is invalid."
WRONG_VR = (
    "The VR code '{0}' is incorrectly specified for '{1}'. The expected VR code for it is '{2}'. "
    "Retry this request either with the correct VR code or without specifying it."
)
UNSUPPORTED_VR = "The VR code '{0}' specified for tag '{1}' is not supported."
ALREADY_SUPPORTED = "The query tag '{0}' is already supported."
DUPLICATE = "The extended query tag '{0}' has been specified before."
TOO_MANY = "Extended query tags exceeds max allowed count '{0}'."
FIELD_NOT_SUPPORTED = 'The field is not supported: "{0}".'
INVALID_QUERY_STATUS = "The field 'queryStatus' in request body is invalid: expected 'Enabled' or 'Disabled'."

# Every two-letter VR of PS3.5 (those outside SUPPORTED_VRS are "not supported", not "invalid").
_ALL_VRS = frozenset(
    "AE AS AT CS DA DS DT FD FL IS LO LT OB OD OF OL OV OW PN SH SL SQ SS ST SV TM UC UI UL UN UR US UT UV".split()
)


@dataclass(frozen=True)
class NewTag:
    """A validated entry of an add request."""

    tag: int
    vr: str
    private_creator: str
    level: TagLevel


def _text(entry: dict[str, Any], name: str) -> str:
    value = entry.get(name)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidRequestBody()
    return value.strip()


def _dictionary_vrs(tag: int) -> list[str]:
    try:
        return [vr.strip() for vr in dictionary_VR(tag).split(" or ")]
    except KeyError:
        return []


def _entry(raw: Any) -> NewTag:
    """One entry `{path, vr?, privateCreator?, level}` (keys case-insensitive), checked in
    Microsoft's order."""
    if not isinstance(raw, dict):
        raise InvalidRequestBody()
    entry = {str(key).lower(): value for key, value in raw.items()}
    path = _text(entry, "path")
    if not path:
        raise ExtendedQueryTagInvalid(PROPERTY_MISSING.format("Path"))
    level_text = _text(entry, "level")
    if not level_text:
        raise ExtendedQueryTagInvalid(MISSING_LEVEL.format(path))
    if level_text.lower() not in TagLevel.values:
        raise ExtendedQueryTagInvalid(INVALID_LEVEL.format(level_text))
    if "." in path:
        raise ExtendedQueryTagInvalid(SEQUENCE)
    tag = tag_path_parse(path)
    vr = _text(entry, "vr").upper()
    creator = _text(entry, "privatecreator")
    if not is_private(tag) and creator:
        raise ExtendedQueryTagInvalid(PRIVATE_CREATOR_NOT_EMPTY.format(path))
    if is_private_creator(tag) and creator:
        raise ExtendedQueryTagInvalid(PRIVATE_CREATOR_NOT_EMPTY_FOR_CODE.format(path))
    if is_private(tag) and not is_private_creator(tag):
        if not creator:
            raise ExtendedQueryTagInvalid(MISSING_PRIVATE_CREATOR.format(path))
        if len(creator) > 64 or vr_validate("LO", creator):
            raise ExtendedQueryTagInvalid(PRIVATE_CREATOR_INVALID.format(path))
    known = [] if is_private(tag) else _dictionary_vrs(tag)
    if is_private_creator(tag):
        known = ["LO"]
    if not vr:
        if not known:
            raise ExtendedQueryTagInvalid(MISSING_VR.format(path))
        vr = known[0]
    elif vr not in _ALL_VRS:
        raise ExtendedQueryTagInvalid(INVALID_VR.format(vr, path))
    elif known and vr not in known:
        raise ExtendedQueryTagInvalid(WRONG_VR.format(vr, path, known[0]))
    if vr == "SQ":
        raise ExtendedQueryTagInvalid(SEQUENCE)
    if vr not in SUPPORTED_VRS:
        raise ExtendedQueryTagInvalid(UNSUPPORTED_VR.format(vr, path))
    if tag in SEARCHABLE:
        raise ExtendedQueryTagInvalid(ALREADY_SUPPORTED.format(path))
    return NewTag(tag=tag, vr=vr, private_creator=creator, level=TagLevel(level_text.lower()))


def tags_validate(*, body: Any) -> list[NewTag]:
    """The entries of an add request, or ExtendedQueryTagInvalid (400) for the first bad one."""
    if not isinstance(body, list):
        raise InvalidRequestBody()
    if not body:
        raise ExtendedQueryTagInvalid(MISSING_TAGS)
    seen: set[int] = set()
    entries = []
    for raw in body:
        entry = _entry(raw)
        if entry.tag in seen:
            raise ExtendedQueryTagInvalid(DUPLICATE.format(tag_path(entry.tag)))
        seen.add(entry.tag)
        entries.append(entry)
    return entries


def tags_changed() -> None:
    """After a change to tag rows: every reader of the cache in this process sees it."""
    # Now for this process (and this transaction), and again once committed.
    tags_cache_clear()
    transaction.on_commit(tags_cache_clear)


def tags_add(*, entries: list[NewTag], operation_id: uuid.UUID) -> list[ExtendedQueryTag]:
    """Add the tags in status adding, linked to the reindex that will make them ready.

    Run inside the transaction that creates the operation, whose one-active-reindex constraint
    serialises concurrent adds (and the unique path refuses a tag twice). 409 when any of them
    exists already; 400 when the server would hold more than MAX_TAGS.
    """
    paths = [tag_path(entry.tag) for entry in entries]
    if ExtendedQueryTag.objects.filter(path__in=paths).exists():
        raise ExtendedQueryTagsAlreadyExist()
    if ExtendedQueryTag.objects.count() + len(entries) > MAX_TAGS:
        raise ExtendedQueryTagInvalid(TOO_MANY.format(MAX_TAGS))
    tags = ExtendedQueryTag.objects.bulk_create(
        ExtendedQueryTag(
            path=path,
            vr=entry.vr,
            private_creator=entry.private_creator,
            level=entry.level,
            status=TagStatus.ADDING,
            query_status=QueryStatus.ENABLED,
            operation_id=operation_id,
        )
        for path, entry in zip(paths, entries, strict=True)
    )
    tags_changed()
    return tags


def query_status_parse(*, body: Any) -> QueryStatus:
    """The body of a PATCH: exactly `{"queryStatus": "Enabled"|"Disabled"}` (case-insensitive)."""
    if not isinstance(body, dict):
        raise InvalidRequestBody()
    for key in body:
        if str(key).lower() != "querystatus":
            raise ExtendedQueryTagInvalid(FIELD_NOT_SUPPORTED.format(key))
    value = next(iter(body.values()), None)
    if not isinstance(value, str) or value.lower() not in QueryStatus.values:
        raise ExtendedQueryTagInvalid(INVALID_QUERY_STATUS)
    return QueryStatus(value.lower())


def tag_query_status_set(*, path: str, query_status: QueryStatus) -> ExtendedQueryTag:
    """PATCH and the admin: enable or disable searching on a tag."""
    tag = tag_get(path=path)
    ExtendedQueryTag.objects.filter(pk=tag.pk).update(query_status=query_status)
    tag.query_status = query_status
    tags_changed()
    return tag


def tag_delete(*, path: str, processing: Callable[[uuid.UUID], bool]) -> None:
    """Delete a tag with its values and errors. A tag whose reindex is still active
    (`processing(operation_id)`) is refused (400)."""
    tag = tag_get(path=path)
    if tag.status == TagStatus.ADDING and tag.operation_id is not None and processing(tag.operation_id):
        raise ExtendedQueryTagBusy(path)
    # First out of every reader's sight (the caches skip tags being deleted), then gone.
    with transaction.atomic():
        ExtendedQueryTag.objects.filter(pk=tag.pk).update(status=TagStatus.DELETING)
        tags_changed()
    with transaction.atomic():
        ExtendedQueryTag.objects.filter(pk=tag.pk).delete()
        tags_changed()

