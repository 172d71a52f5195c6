"""Reading one STOW part: P10 normalisation, attribute extraction, metadata and frame index.

Large values (pixel data above all) are deferred by pydicom and never loaded: only their
position in the file is recorded, for the frame index.
"""

from __future__ import annotations

import functools
import json
import struct
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pydicom
from pydicom.tag import Tag

from dicomsvc.dicom_values import pn_search_form, uid_is_valid, uid_normalize
from studies.dicom.dicomjson import (
    BULK_THRESHOLD_DEFAULT,
    ElementErrors,
    dataset_json_dict,
    json_dumps,
    json_loads_fast,
)
from studies.dicom.elements import IMPLICIT_LITTLE, ITEM, SEQUENCE_DELIMITER, UNDEFINED_LENGTH, SequenceTooDeep
from studies.dicom.header import Header, header_read
from studies.dicom.splice import MalformedFile, file_layout
from studies.dicom.streams import ConcatReader, Readable
from studies.dicom.transfer_syntaxes import DEFLATED, EXPLICIT_VR_BIG_ENDIAN
from studies.dicom.vr import parse_da, vr_validate

if TYPE_CHECKING:
    from studies.eqt.index import ExtendedRead

PREAMBLE = b"\x00" * 128 + b"DICM"
DEFER_SIZE = 64 * 1024
PIXEL_DATA = Tag(0x7FE0, 0x0010)


class NotDicom(Exception):
    """The bytes are not a DICOM Part 10 file."""


# Attributes indexed as columns: keyword -> (tag, VR, level).
INDEXED = {
    "PatientID": (0x00100020, "LO", "study"),
    "PatientName": (0x00100010, "PN", "study"),
    "PatientBirthDate": (0x00100030, "DA", "study"),
    "StudyDate": (0x00080020, "DA", "study"),
    "StudyDescription": (0x00081030, "LO", "study"),
    "AccessionNumber": (0x00080050, "SH", "study"),
    "ReferringPhysicianName": (0x00080090, "PN", "study"),
    "Modality": (0x00080060, "CS", "series"),
    "PerformedProcedureStepStartDate": (0x00400244, "DA", "series"),
    "ManufacturerModelName": (0x00081090, "LO", "series"),
    "SOPClassUID": (0x00080016, "UI", "instance"),
}
REQUIRED_UIDS = {
    "SOPClassUID": 0x00080016,
    "StudyInstanceUID": 0x0020000D,
    "SeriesInstanceUID": 0x0020000E,
    "SOPInstanceUID": 0x00080018,
}


def p10_normalize(part: Readable) -> ConcatReader:
    """The bytes to store: a 128-byte preamble, `DICM`, then file meta and dataset.

    A standard P10 file is stored byte for byte, preamble included (a TIFF/DICOM dual-format
    preamble is legal, PS3.10 §7.5, and an archive must return what it was given). `DICM`
    without preamble, and file meta without `DICM` (what pydicom writes for a dataset made
    in memory), get a zeroed preamble and `DICM` in front.
    """
    part.seek(0)
    head = part.read(136)
    if len(head) >= 132 and head[128:132] == b"DICM":
        return ConcatReader(b"", part, 0)
    if head[:4] == b"DICM":
        return ConcatReader(PREAMBLE, part, 4)
    if len(head) >= 8 and head[:2] == b"\x02\x00":
        return ConcatReader(PREAMBLE, part, 0)
    raise NotDicom("The DICOM instance is invalid: it is not a DICOM Part 10 file (no File Meta Information).")


@dataclass
class ParsedInstance:
    stream: ConcatReader
    transfer_syntax_uid: str
    uids: dict[str, str]
    raw_uids: dict[str, str]
    missing: list[str]
    indexed: dict[str, Any]
    invalid: dict[int, str]
    multi_valued: list[str]
    patient_id_present: bool
    metadata: dict[str, Any]
    number_of_frames: int
    instance_number: int | None
    frame_index: list[list[list[int]]] | None
    warnings: list[int] = field(default_factory=list)
    # Values of the extended query tags, read at STOW validation (`studies.eqt.index`).
    extended: ExtendedRead | None = None

    @functools.cached_property
    def metadata_text(self) -> str:
        return json_dumps(self.metadata)

    @functools.cached_property
    def metadata_values(self) -> dict[str, Any]:
        """The metadata with every value as plain JSON data: the values a cached header group
        replayed are `orjson.Fragment`s (text only), so readers of values use this instead."""
        return json_loads_fast(self.metadata_text)  # type: ignore[no-any-return]

    def metadata_values_of(self, keys: Iterable[str]) -> dict[str, Any]:
        """`metadata_values` of the top-level attributes `keys` only: a reader of a few values
        (the extended query tags' at STOW) decodes those, not the whole document."""
        if "metadata_values" in self.__dict__:  # decoded already
            return self.metadata_values
        metadata = self.metadata
        return json_loads_fast(json_dumps({key: metadata[key] for key in keys if key in metadata}))  # type: ignore[no-any-return]

    @property
    def frame_index_text(self) -> str:
        return json.dumps(self.frame_index, separators=(",", ":")) if self.frame_index else ""


# Top-level attributes the store path reads besides the indexed ones and the UIDs.
INT_TAGS = {
    "NumberOfFrames": 0x00280008,
    "InstanceNumber": 0x00200013,
    "Rows": 0x00280010,
    "Columns": 0x00280011,
    "SamplesPerPixel": 0x00280002,
    "BitsAllocated": 0x00280100,
}
_WANTED_TAGS = (
    set(REQUIRED_UIDS.values()) | {tag for tag, _vr, _level in INDEXED.values()} | set(INT_TAGS.values())
)


def _values(value: Any) -> tuple[Any, ...]:
    if value is None or value == "":
        return ()
    if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        return tuple(v if isinstance(v, int) else str(v) for v in value)
    return (value if isinstance(value, int) else str(value),)


def _pydicom_header(stream: ConcatReader, *, validate: bool, bulk_threshold: int = BULK_THRESHOLD_DEFAULT) -> Header:
    """What `header_read` gives, read by pydicom: for everything the fast reader leaves to it."""
    try:
        # pydicom reads sequences recursively, and how deep it gets before the interpreter's
        # recursion limit depends on the caller's stack: refuse deep nesting before it reads.
        file_layout(stream)
    except SequenceTooDeep:
        raise
    except MalformedFile:
        pass  # pydicom decides (and names the problem) below
    try:
        stream.seek(0)
        ds = pydicom.dcmread(stream, defer_size=DEFER_SIZE, force=False)
        ts = str(ds.file_meta.get("TransferSyntaxUID", "") or "")
        if not ts:
            raise NotDicom("The DICOM instance is invalid: File Meta Information has no TransferSyntaxUID.")
    except NotDicom:
        raise
    except RecursionError:  # pydicom reads nested sequences recursively
        raise SequenceTooDeep() from None
    except Exception as exc:  # pydicom raises many types for a malformed file (a property test finds them)
        raise NotDicom(f"The DICOM instance is invalid: {exc}") from exc
    values: dict[int, tuple[Any, ...]] = {}
    decode_errors: dict[int, str] = {}
    for tag in _WANTED_TAGS:
        if tag in ds:
            try:
                values[tag] = _values(ds[tag].value)
            except Exception as exc:
                decode_errors[tag] = f"Value cannot be decoded: {exc}"
    errors = ElementErrors()
    metadata = dataset_json_dict(ds, errors=errors, validate=validate, bulk_threshold=bulk_threshold)
    pixel_data = None
    if PIXEL_DATA in ds:
        raw = ds.get_item(PIXEL_DATA, keep_deferred=True)
        value_tell, length = getattr(raw, "value_tell", None), getattr(raw, "length", None)
        if value_tell is not None and length is not None:
            pixel_data = (value_tell, length)
        else:
            pixel_data = (-1, -1)
    return Header(
        transfer_syntax_uid=ts,
        metadata=metadata,
        errors=errors,
        values=values,
        pixel_data=pixel_data,
        decode_errors=decode_errors,
    )


def _int_value(header: Header, keyword: str, default: int | None) -> int | None:
    values = header.values.get(INT_TAGS[keyword], ())
    if len(values) != 1:
        return default
    try:
        return int(values[0])
    except (TypeError, ValueError):
        return default


def instance_parse(
    part: Readable, *, validate_all: bool, bulk_threshold: int = BULK_THRESHOLD_DEFAULT
) -> ParsedInstance:
    """Read a STOW part. Raises NotDicom when it cannot be read as DICOM P10 or nests too deeply.

    Binary values up to `bulk_threshold` bytes go into the metadata inline, larger ones as BulkDataURIs.
    """
    stream = p10_normalize(part)
    try:
        header = header_read(stream, validate=validate_all, bulk_threshold=bulk_threshold) or _pydicom_header(
            stream, validate=validate_all, bulk_threshold=bulk_threshold
        )
    except SequenceTooDeep as exc:
        raise NotDicom(f"The DICOM instance is invalid: {exc}.") from exc
    ts = header.transfer_syntax_uid
    if not uid_is_valid(ts):  # a corrupt file meta: control characters would reach the row (and PostgreSQL)
        raise NotDicom("The DICOM instance is invalid: its Transfer Syntax UID (0002,0010) is not a valid UID.")

    uids: dict[str, str] = {}
    raw_uids: dict[str, str] = {}
    missing: list[str] = []
    for keyword, tag in REQUIRED_UIDS.items():
        values = header.values.get(tag, ())
        raw = values[0] if values else ""
        raw_uids[keyword] = raw
        if not uid_normalize(raw):
            missing.append(keyword)
        uids[keyword] = uid_normalize(raw)

    invalid: dict[int, str] = {}
    indexed: dict[str, Any] = {}
    multi_valued: list[str] = []
    for keyword, (tag, vr, _level) in INDEXED.items():
        if tag in header.decode_errors:
            invalid[tag] = header.decode_errors[tag]
            continue
        values = header.values.get(tag, ())
        if len(values) > 1:
            multi_valued.append(keyword)
        value = values[0] if values else ""
        reason = vr_validate(vr, value)
        if reason:
            invalid[tag] = reason
            continue
        indexed[keyword] = value
    for keyword, tag in REQUIRED_UIDS.items():
        if keyword not in missing:
            reason = vr_validate("UI", raw_uids[keyword])
            if reason:
                invalid[tag] = reason

    patient_id = INDEXED["PatientID"][0]
    patient_id_present = patient_id in header.values or patient_id in header.decode_errors

    metadata = header.metadata
    for tag, reason in header.errors.reasons.items():
        invalid.setdefault(tag, reason)
    for tag in invalid:
        metadata.pop(f"{tag:08X}", None)

    frames = _int_value(header, "NumberOfFrames", None)
    has_pixels = header.pixel_data is not None
    number_of_frames = (frames if frames and frames > 0 else 1) if has_pixels else 0
    frame_index = _frame_index(header, stream, ts, number_of_frames) if has_pixels else None

    return ParsedInstance(
        stream=stream,
        transfer_syntax_uid=ts,
        uids=uids,
        raw_uids=raw_uids,
        missing=missing,
        indexed=indexed,
        invalid=invalid,
        multi_valued=multi_valued,
        patient_id_present=patient_id_present,
        metadata=metadata,
        number_of_frames=number_of_frames,
        instance_number=_int_value(header, "InstanceNumber", None),
        frame_index=frame_index,
    )


def _frame_index(header: Header, stream: Readable, ts: str, frames: int) -> list[list[list[int]]] | None:
    """[[offset, length], ...] fragments per frame, positions in the stored file; None if unknown."""
    value_tell, length = header.pixel_data or (-1, -1)
    if value_tell < 0 or ts == EXPLICIT_VR_BIG_ENDIAN or ts in DEFLATED:
        # Big endian frames need swapping; a deflated file has no frame bytes to point at.
        return None
    if length != UNDEFINED_LENGTH:
        rows = _int_value(header, "Rows", None)
        cols = _int_value(header, "Columns", None)
        samples = _int_value(header, "SamplesPerPixel", 1) or 1
        bits = _int_value(header, "BitsAllocated", None)
        if rows is None or cols is None or bits is None:
            return None
        if bits % 8:
            return None  # 1-bit frames are not byte aligned
        frame_size = rows * cols * samples * bits // 8
        if frame_size <= 0 or frame_size * frames > length:
            return None
        return [[[value_tell + i * frame_size, frame_size]] for i in range(frames)]
    return _encapsulated_index(stream, value_tell, frames)


def _encapsulated_index(stream: Readable, pos: int, frames: int) -> list[list[list[int]]] | None:
    fragments: list[list[int]] = []
    offsets: list[int] = []
    first = True
    while True:
        stream.seek(pos)
        header = stream.read(8)
        if len(header) < 8:
            return None
        tag, _vr, item_len, _size = IMPLICIT_LITTLE.head(header, 0)  # items carry no VR
        if tag == SEQUENCE_DELIMITER:
            break
        if tag != ITEM or item_len == UNDEFINED_LENGTH:
            return None
        if first:
            stream.seek(pos + 8)
            table = stream.read(item_len)
            if len(table) < item_len:
                return None  # the offset table runs past the end of the file
            offsets = list(struct.unpack(f"<{item_len // 4}I", table[: item_len // 4 * 4]))
            first = False
        else:
            fragments.append([pos + 8, item_len])
        pos += 8 + item_len
    if not fragments:
        return None
    if len(fragments) == frames:
        return [[fragment] for fragment in fragments]
    if frames == 1:
        return [fragments]
    if len(offsets) == frames:
        # Basic Offset Table: byte offsets of each frame's first item, from the first fragment item.
        base = fragments[0][0] - 8
        starts = [base + offset for offset in offsets]
        grouped: list[list[list[int]]] = [[] for _ in range(frames)]
        for fragment in fragments:
            item_pos = fragment[0] - 8
            index = max(i for i, start in enumerate(starts) if start <= item_pos)
            grouped[index].append(fragment)
        return grouped if all(grouped) else None
    return None


STUDY_KEYWORDS = tuple(keyword for keyword, (_tag, _vr, level) in INDEXED.items() if level == "study")


def study_columns(values: dict[str, str]) -> dict[str, Any]:
    """Study-row column values for the study-level attributes in `values` (first values, as text).

    Only attributes present in `values` yield columns, so a bulk update sets just the
    columns of the attributes it changes.
    """
    columns: dict[str, Any] = {}
    if "PatientID" in values:
        columns["patient_id"] = values["PatientID"]
    if "PatientName" in values:
        columns["patient_name"] = values["PatientName"]
        columns["patient_name_search"] = pn_search_form(values["PatientName"])
    if "PatientBirthDate" in values:
        columns["patient_birth_date"] = parse_da(values["PatientBirthDate"])
    if "StudyDate" in values:
        columns["study_date"] = parse_da(values["StudyDate"])
    if "StudyDescription" in values:
        columns["study_description"] = values["StudyDescription"]
    if "AccessionNumber" in values:
        columns["accession_number"] = values["AccessionNumber"]
    if "ReferringPhysicianName" in values:
        columns["referring_physician_name"] = values["ReferringPhysicianName"]
        columns["referring_physician_name_search"] = pn_search_form(values["ReferringPhysicianName"])
    return columns


def parsed_indexed_columns(parsed: ParsedInstance) -> dict[str, Any]:
    """Column values for study, series and instance rows."""
    return indexed_columns(parsed.indexed)


def indexed_columns(values: dict[str, Any]) -> dict[str, Any]:
    """Column values from indexed attribute values by keyword (also used by bench/qido_load.py)."""
    return {
        "study": study_columns({keyword: values.get(keyword, "") for keyword in STUDY_KEYWORDS}),
        "series": {
            "modality": values.get("Modality", ""),
            "performed_procedure_step_start_date": parse_da(values.get("PerformedProcedureStepStartDate", "")),
            "manufacturer_model_name": values.get("ManufacturerModelName", ""),
        },
    }
