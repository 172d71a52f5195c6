"""STOW-RS: validate and store every part of a request, one outcome per part."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import BinaryIO

from django.conf import settings

from dicomsvc.api.mediatypes import MediaType
from dicomsvc.errors import BadRequest, UnsupportedMediaType
from partitions.models import Partition
from studies.dicom.dicomjson import tag_label
from studies.dicom.multipart import Part, multipart_parse
from studies.dicom.reader import INDEXED, REQUIRED_UIDS, NotDicom, ParsedInstance, instance_parse
from studies.dicom.streams import FileSlice
from studies.dicom.transfer_syntaxes import IMPLICIT_VR_LITTLE_ENDIAN
from studies.dicom.uids import UID_INVALID_REASON
from studies.eqt.index import parsed_extended_read
from studies.eqt.tags import TagDef, tags_cached
from studies.services.store import InstanceAlreadyExists, InstancePending, instances_store

logger = logging.getLogger(__name__)

PROCESSING_FAILURE = 272
VALIDATION_FAILURE = 43264
STUDY_MISMATCH = 43265
ALREADY_EXISTS = 45070
PENDING = 45071
WARNING_VALIDATION = 1
WARNING_SOP_CLASS_MISMATCH = 45063
DICOM = "application/dicom"
MULTIPLE_VALUES_WARNING = "One or more indexed Dicom tag(s) have multiple values, only first value is indexed."
STUDY_MISMATCH_COMMENT = "The StudyInstanceUid in the payload does not match the specified StudyInstanceUid."

_INDEXED_TAGS = {tag for tag, _vr, _level in INDEXED.values()} | set(REQUIRED_UIDS.values())
_KEYWORD_BY_TAG = {tag: keyword for keyword, (tag, _vr, _level) in INDEXED.items()} | {
    tag: keyword for keyword, tag in REQUIRED_UIDS.items()
}


@dataclass
class StowOutcome:
    sop_class_uid: str | None = None
    sop_instance_uid: str | None = None
    study_instance_uid: str | None = None
    series_instance_uid: str | None = None
    failure_reason: int | None = None
    warning_reason: int | None = None
    comments: list[str] = field(default_factory=list)

    @property
    def stored(self) -> bool:
        return self.failure_reason is None


@dataclass
class StowResult:
    outcomes: list[StowOutcome]
    api_version: int = 2
    multi_valued_warning: bool = False

    @property
    def status_code(self) -> int:
        if not self.outcomes:
            return 204
        stored = [o for o in self.outcomes if o.stored]
        if not stored:
            return 409
        if len(stored) < len(self.outcomes):
            return 202
        if self.api_version >= 2 and any(o.warning_reason is not None for o in stored):
            return 202
        return 200


def _comment(tag: int, reason: str) -> str:
    return f"DICOM100: {tag_label(tag)} - {reason}"


def stow_parts(*, body: BinaryIO, size: int, media: MediaType) -> list[FileSlice]:
    """The DICOM parts of a request body; 415/400 for anything we cannot take (nothing stored)."""
    if size == 0:
        return []
    if media.type == DICOM:
        if media.params:
            raise UnsupportedMediaType(_media_text(media))
        return [FileSlice(body, 0, size)]
    if media.type != "multipart/related":
        raise UnsupportedMediaType(_media_text(media))
    boundary = media.params.get("boundary")
    if not boundary:
        raise UnsupportedMediaType(
            _media_text(media),
            f"The content type '{_media_text(media)}' is either not multipart or is missing boundary.",
        )
    if "start" in media.params:
        raise BadRequest("The start parameter in multipart/related request is not supported.")
    root_type = media.params.get("type", "").lower()
    if root_type and root_type != DICOM:
        raise UnsupportedMediaType(root_type)
    parts: list[Part] = multipart_parse(raw=body, size=size, boundary=boundary)
    for index, part in enumerate(parts):
        part_type = (part.content_type or "").split(";")[0].strip().lower()
        if part_type == DICOM:
            continue
        if not part_type and root_type == DICOM and index == 0:
            continue
        raise UnsupportedMediaType(part_type or "(none)")
    return [part.body for part in parts]


def _media_text(media: MediaType) -> str:
    params = "".join(f"; {k}={v}" for k, v in media.params.items())
    return f"{media.type}{params}"


def _validate(parsed: ParsedInstance, *, api_version: int, study_uid: str | None, outcome: StowOutcome) -> None:
    for keyword in parsed.missing:
        tag = REQUIRED_UIDS[keyword]
        outcome.comments.append(_comment(tag, f"The required tag '{tag_label(tag)}' is missing."))
    if not parsed.patient_id_present or (api_version < 2 and not parsed.indexed.get("PatientID")):
        if 0x00100020 not in parsed.invalid:
            outcome.comments.append(_comment(0x00100020, f"The required tag '{tag_label(0x00100020)}' is missing."))
    for keyword, tag in REQUIRED_UIDS.items():
        if keyword not in parsed.missing and tag in parsed.invalid:
            outcome.comments.append(
                _comment(tag, f"Dicom element '{keyword}' failed validation for VR 'UI': {UID_INVALID_REASON}")
            )
    if outcome.comments:
        outcome.failure_reason = VALIDATION_FAILURE
        return
    if study_uid is not None and parsed.uids["StudyInstanceUID"] != study_uid:
        outcome.failure_reason = STUDY_MISMATCH
        outcome.comments.append(_comment(0x0020000D, STUDY_MISMATCH_COMMENT))
        return
    # v1 validates only indexed attributes and fails on them; v2 validates all, drops the
    # invalid ones from metadata and warns (as Microsoft's server does).
    comments = [
        _comment(tag, f"Dicom element '{_KEYWORD_BY_TAG.get(tag, tag_label(tag))}' failed validation: {reason}")
        for tag, reason in parsed.invalid.items()
        if api_version >= 2 or tag in _INDEXED_TAGS
    ]
    if not comments:
        return
    outcome.comments.extend(comments)
    if api_version < 2:
        outcome.failure_reason = VALIDATION_FAILURE
    else:
        outcome.warning_reason = WARNING_VALIDATION


def _validate_extended(
    parsed: ParsedInstance, *, tags: tuple[TagDef, ...], api_version: int, outcome: StowOutcome
) -> None:
    """Read the extended query tag values: an invalid one fails the instance in v1 (as Microsoft's
    server does); in v2 it is left out of the index with a warning."""
    read = parsed_extended_read(parsed=parsed, tags=tags)
    parsed.extended = read
    if not read.errors:
        return
    outcome.comments.extend(
        _comment(tag.tag, f"Dicom element '{tag.label}' failed validation: {reason}") for tag, reason in read.errors
    )
    if api_version < 2:
        outcome.failure_reason = VALIDATION_FAILURE
    else:
        outcome.warning_reason = WARNING_VALIDATION


def stow_process(
    *,
    parts: list[FileSlice],
    partition: Partition,
    study_uid: str | None,
    api_version: int,
) -> StowResult:
    result = StowResult(outcomes=[], api_version=api_version)
    # Parse and validate every part first, then store the valid ones together (batched).
    to_store: list[tuple[StowOutcome, ParsedInstance]] = []
    tags = tags_cached() if parts else ()
    for part in parts:
        outcome = StowOutcome()
        result.outcomes.append(outcome)
        try:
            parsed = instance_parse(
                part, validate_all=api_version >= 2, bulk_threshold=settings.DICOM_BULKDATA_THRESHOLD_BYTES
            )
        except NotDicom as exc:
            outcome.failure_reason = PROCESSING_FAILURE
            outcome.comments.append(str(exc))
            continue
        except Exception as exc:  # a malformed file must fail its part, never the request
            logger.warning("unreadable STOW part: %s", exc, exc_info=True)
            outcome.failure_reason = PROCESSING_FAILURE
            outcome.comments.append(f"The DICOM instance is invalid: {exc}")
            continue
        outcome.sop_class_uid = parsed.raw_uids["SOPClassUID"] or None
        outcome.sop_instance_uid = parsed.raw_uids["SOPInstanceUID"] or None
        outcome.study_instance_uid = parsed.uids["StudyInstanceUID"]
        outcome.series_instance_uid = parsed.uids["SeriesInstanceUID"]
        _validate(parsed, api_version=api_version, study_uid=study_uid, outcome=outcome)
        if outcome.failure_reason is None and tags:
            _validate_extended(parsed, tags=tags, api_version=api_version, outcome=outcome)
        if outcome.failure_reason is not None:
            continue
        if parsed.multi_valued or (parsed.extended is not None and parsed.extended.multiple):
            result.multi_valued_warning = True
        if outcome.warning_reason is None and parsed.transfer_syntax_uid == IMPLICIT_VR_LITTLE_ENDIAN:
            outcome.warning_reason = WARNING_SOP_CLASS_MISMATCH
        to_store.append((outcome, parsed))
    errors = instances_store(partition=partition, parsed=[parsed for _outcome, parsed in to_store])
    for (outcome, _parsed), error in zip(to_store, errors, strict=True):
        if isinstance(error, InstanceAlreadyExists):
            outcome.failure_reason = ALREADY_EXISTS
        elif isinstance(error, InstancePending):
            outcome.failure_reason = PENDING
        elif error is not None:
            outcome.failure_reason = PROCESSING_FAILURE
    return result
