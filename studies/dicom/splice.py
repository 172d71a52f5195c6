"""Rewriting a stored P10 file with a few top-level attributes replaced, every other byte kept.

A bulk update changes a handful of patient and study attributes. Parsing the whole dataset
and writing it back with pydicom would load pixel data into memory and could re-encode
values it never meant to touch. Instead the file is scanned for the byte ranges of its
top-level elements (values are skipped, never read), and the new file is assembled from:

- the original preamble and `DICM`;
- the file meta group, with (0002,0012) and (0002,0013) replaced and its group length
  recomputed (every other meta element copied byte for byte);
- the original bytes of every unchanged element, copied in large chunks (pixel data is
  streamed through untouched), with the replaced elements encoded in the file's own
  transfer syntax and character set, in tag order.

Deflated transfer syntaxes compress the whole dataset, so those few files are rewritten
with pydicom instead.
"""

from __future__ import annotations

import io
import struct
from collections.abc import Iterable
from dataclasses import dataclass
from typing import IO

from pydicom import config as pydicom_config
from pydicom.charset import convert_encodings
from pydicom.dataelem import DataElement
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_data_element
from pydicom.uid import UID

from studies.dicom.elements import (
    EXPLICIT_LITTLE,
    IMPLICIT_LITTLE,
    ITEM,
    ITEM_DELIMITER,
    MAX_SEQUENCE_DEPTH,
    META_GROUP_LENGTH,
    SEQUENCE_DELIMITER,
    SPECIFIC_CHARACTER_SET,
    TRANSFER_SYNTAX_UID,
    UNDEFINED_LENGTH,
    Encoding,
    SequenceTooDeep,
)
from studies.dicom.streams import Readable
from studies.dicom.transfer_syntaxes import DEFLATED, EXPLICIT_VR_BIG_ENDIAN, IMPLICIT_VR_LITTLE_ENDIAN

PREAMBLE_SIZE = 128
MAGIC = b"DICM"
META_START = PREAMBLE_SIZE + len(MAGIC)
CHUNK = 1024 * 1024


class MalformedFile(Exception):
    """The stored file cannot be scanned as DICOM Part 10."""


class FileTooDeep(MalformedFile, SequenceTooDeep):
    """A stored or received file nests undefined-length sequences deeper than MAX_SEQUENCE_DEPTH."""


class UnencodableValue(Exception):
    """A new value cannot be written in the file's character set."""


@dataclass(frozen=True)
class Span:
    """One top-level element: its tag and the byte range [start, end) of header and value."""

    tag: int
    start: int
    end: int


class _Source:
    """Positioned reads from the stored file with bounds checks.

    Element headers are a few bytes each; they are served from one cached block, so a
    scan costs a handful of reads however many elements there are. Skipped values (pixel
    data) are never read.
    """

    BLOCK = 64 * 1024

    def __init__(self, fileobj: Readable) -> None:
        self.fileobj = fileobj
        fileobj.seek(0, io.SEEK_END)
        self.size = fileobj.tell()
        self._block_start = 0
        self._block = b""

    def read(self, pos: int, count: int) -> bytes:
        if pos < 0 or pos + count > self.size:
            raise MalformedFile(f"element at offset {pos} runs past the end of the file")
        offset = pos - self._block_start
        if offset < 0 or offset + count > len(self._block):
            self.fileobj.seek(pos)
            self._block = self.fileobj.read(max(count, self.BLOCK))
            self._block_start, offset = pos, 0
            if len(self._block) < count:
                raise MalformedFile(f"short read at offset {pos}")
        return self._block[offset : offset + count]


def _header(src: _Source, pos: int, enc: Encoding) -> tuple[int, bytes | None, int, int]:
    """(tag, VR or None, value length, value offset) of the element or item at `pos`."""
    try:
        tag, vr, length, head_length = enc.head(src.read(pos, min(12, src.size - pos)), 0)
    except struct.error:
        raise MalformedFile(f"element at offset {pos} runs past the end of the file") from None
    return tag, vr, length, pos + head_length


def _value_end(src: _Source, value_pos: int, length: int, vr: bytes | None, enc: Encoding, depth: int) -> int:
    if length != UNDEFINED_LENGTH:
        end = value_pos + length
        if end > src.size:
            raise MalformedFile(f"value at offset {value_pos} runs past the end of the file")
        return end
    if depth >= MAX_SEQUENCE_DEPTH:  # depth 0: a top-level sequence
        raise FileTooDeep()
    # An explicit-VR UN of undefined length holds implicit VR little endian (PS3.5 §6.2.2).
    inner = IMPLICIT_LITTLE if vr == b"UN" else enc
    pos = value_pos
    while True:
        tag, _vr, item_length, item_value = _header(src, pos, inner)
        if tag == SEQUENCE_DELIMITER:
            return item_value
        if tag != ITEM:
            raise MalformedFile(f"expected an item at offset {pos}")
        if item_length != UNDEFINED_LENGTH:
            pos = _value_end(src, item_value, item_length, None, inner, depth + 1)
        else:
            pos = _item_end(src, item_value, inner, depth + 1)


def _item_end(src: _Source, pos: int, enc: Encoding, depth: int) -> int:
    """End of an undefined-length item: after its item delimiter."""
    while True:
        tag, vr, length, value_pos = _header(src, pos, enc)
        if tag == ITEM_DELIMITER:
            return value_pos
        pos = _value_end(src, value_pos, length, vr, enc, depth)


def _spans(src: _Source, start: int, end: int | None, enc: Encoding, *, group: int | None = None) -> list[Span]:
    """Top-level elements from `start`; stops at `end`, or at the first element outside `group`."""
    spans: list[Span] = []
    pos = start
    limit = src.size if end is None else end
    while pos < limit:
        if limit - pos < 8:
            raise MalformedFile(f"{limit - pos} stray bytes at the end of the dataset")
        if group is not None and struct.unpack(f"{enc.endian}H", src.read(pos, 2))[0] != group:
            break
        tag, vr, length, value_pos = _header(src, pos, enc)
        element_end = _value_end(src, value_pos, length, vr, enc, 0)
        spans.append(Span(tag, pos, element_end))
        pos = element_end
    return spans


@dataclass(frozen=True)
class FileLayout:
    """Where the file meta and the dataset's top-level elements are."""

    transfer_syntax_uid: str
    meta: list[Span]
    dataset: list[Span]
    dataset_start: int
    encoding: Encoding | None = None


def file_layout(fileobj: Readable) -> FileLayout:
    """Scan a stored P10 file (preamble, `DICM`, meta, dataset) without reading values."""
    return _layout(_Source(fileobj))


def _layout(src: _Source) -> FileLayout:
    if src.size < META_START or src.read(PREAMBLE_SIZE, 4) != MAGIC:
        raise MalformedFile("no DICM prefix after the preamble")
    meta_enc = EXPLICIT_LITTLE
    meta = _spans(src, META_START, None, meta_enc, group=0x0002)
    dataset_start = meta[-1].end if meta else META_START
    ts_span = next((span for span in meta if span.tag == TRANSFER_SYNTAX_UID), None)
    if ts_span is None:
        raise MalformedFile("the file meta has no TransferSyntaxUID")
    _tag, _vr, length, value_pos = _header(src, ts_span.start, meta_enc)
    ts = src.read(value_pos, length).rstrip(b"\x00 ").decode("ascii", "replace")
    if ts in DEFLATED:
        return FileLayout(ts, meta, [], dataset_start)
    enc = _dataset_encoding(src, ts, dataset_start)
    return FileLayout(ts, meta, _spans(src, dataset_start, None, enc), dataset_start, enc)


def _dataset_encoding(src: _Source, ts: str, dataset_start: int) -> Encoding:
    """The encoding the dataset really uses: some writers put implicit VR under an explicit syntax.

    Like pydicom, look at the first element: without two letters where the VR belongs, it
    is implicit VR.
    """
    enc = Encoding(little=ts != EXPLICIT_VR_BIG_ENDIAN, implicit=ts == IMPLICIT_VR_LITTLE_ENDIAN)
    if enc.implicit or src.size < dataset_start + 6:
        return enc
    vr = src.read(dataset_start + 4, 2)
    if not (vr.isalpha() and vr.isupper()):
        return Encoding(little=enc.little, implicit=True)
    return enc


def _explicit_le_element(tag: int, vr: str, value: bytes) -> bytes:
    return struct.pack("<HH2sH", tag >> 16, tag & 0xFFFF, vr.encode(), len(value)) + value


def _padded(text: str, pad: bytes) -> bytes:
    data = text.encode("ascii")
    return data + pad if len(data) % 2 else data


def _group_length_element(tag: int, length: int, enc: Encoding) -> bytes:
    e = enc.endian
    if enc.implicit:
        return struct.pack(f"{e}HHII", tag >> 16, tag & 0xFFFF, 4, length)
    return struct.pack(f"{e}HH2sHI", tag >> 16, tag & 0xFFFF, b"UL", 4, length)


def _character_sets(src: _Source, layout: FileLayout, enc: Encoding) -> list[str]:
    """Python codecs for the file's (0008,0005); strict ASCII when absent (the default repertoire)."""
    span = next((s for s in layout.dataset if s.tag == SPECIFIC_CHARACTER_SET), None)
    if span is None:
        return ["ascii"]
    _tag, _vr, length, value_pos = _header(src, span.start, enc)
    terms = [term.strip() for term in src.read(value_pos, length).decode("ascii", "replace").split("\\")]
    if not any(terms) or terms == ["ISO_IR 6"]:
        return ["ascii"]
    return convert_encodings(terms)


def _encode(elements: Iterable[DataElement], enc: Encoding, encodings: list[str]) -> dict[int, bytes]:
    """Encoded bytes per tag; UnencodableValue rather than pydicom's silent '?' replacement."""
    previous = pydicom_config.settings.writing_validation_mode
    pydicom_config.settings.writing_validation_mode = pydicom_config.RAISE
    try:
        out: dict[int, bytes] = {}
        for element in elements:
            buffer = DicomBytesIO()
            buffer.is_little_endian = enc.little
            buffer.is_implicit_VR = enc.implicit
            try:
                write_data_element(buffer, element, encodings)
            except (UnicodeError, ValueError) as exc:
                raise UnencodableValue(
                    f"the new value of {element.tag} cannot be written in the file's character set: {exc}"
                ) from exc
            out[int(element.tag)] = buffer.getvalue()
        return out
    finally:
        pydicom_config.settings.writing_validation_mode = previous


# A plan piece: (tag, bytes to write) or (tag, (start, end) range of the source to copy).
_Piece = tuple[int, "bytes | tuple[int, int]"]


def _piece_size(piece: _Piece) -> int:
    body = piece[1]
    return len(body) if isinstance(body, bytes) else body[1] - body[0]


def _merge(spans: list[Span], replacements: dict[int, bytes]) -> list[_Piece]:
    """The source elements in order, with replacements swapped in or inserted by tag."""
    pieces: list[_Piece] = []
    pending = sorted(replacements)
    for span in spans:
        while pending and pending[0] < span.tag:
            tag = pending.pop(0)
            pieces.append((tag, replacements[tag]))
        if pending and pending[0] == span.tag:
            tag = pending.pop(0)
            pieces.append((tag, replacements[tag]))
            continue
        pieces.append((span.tag, (span.start, span.end)))
    pieces.extend((tag, replacements[tag]) for tag in pending)
    return pieces


def _fix_group_lengths(pieces: list[_Piece], groups: set[int], enc: Encoding) -> list[_Piece]:
    """Recompute (gggg,0000) of the groups whose content changed (retired, but must stay true)."""
    out = list(pieces)
    for index, (tag, _body) in enumerate(out):
        group = tag >> 16
        if tag & 0xFFFF == 0 and group in groups:
            length = sum(_piece_size(p) for p in out if p[0] >> 16 == group and p[0] != tag)
            out[index] = (tag, _group_length_element(tag, length, enc))
    return out


def _write(src: _Source, target: IO[bytes], pieces: list[_Piece]) -> None:
    """Write pieces; adjacent source ranges are copied as one run, in chunks."""
    run_start: int | None = None
    run_end = 0

    def flush() -> None:
        if run_start is None:
            return
        pos = run_start
        src.fileobj.seek(pos)
        while pos < run_end:
            data = src.fileobj.read(min(CHUNK, run_end - pos))
            if not data:
                raise MalformedFile(f"short read at offset {pos}")
            target.write(data)
            pos += len(data)

    for _tag, body in pieces:
        if isinstance(body, tuple):
            if run_start is not None and body[0] == run_end:
                run_end = body[1]
                continue
            flush()
            run_start, run_end = body
            continue
        flush()
        run_start = None
        target.write(body)
    flush()


def p10_rewrite(
    source: IO[bytes],
    target: IO[bytes],
    *,
    changes: list[DataElement],
    implementation_class_uid: str,
    implementation_version_name: str,
) -> None:
    """Write `source` to `target` with `changes` applied and this implementation named in the meta."""
    src = _Source(source)
    layout = _layout(src)
    if layout.transfer_syntax_uid in DEFLATED:
        _rewrite_with_pydicom(
            source, target, changes=changes, implementation_class_uid=implementation_class_uid,
            implementation_version_name=implementation_version_name,
        )
        return
    enc = layout.encoding
    assert enc is not None
    replacements = _encode(changes, enc, _character_sets(src, layout, enc))

    meta_replacements = {
        0x00020012: _explicit_le_element(0x00020012, "UI", _padded(implementation_class_uid, b"\x00")),
        0x00020013: _explicit_le_element(0x00020013, "SH", _padded(implementation_version_name, b" ")),
    }
    meta_pieces = [p for p in _merge(layout.meta, meta_replacements) if p[0] != META_GROUP_LENGTH]
    meta_length = sum(_piece_size(p) for p in meta_pieces)
    meta_enc = EXPLICIT_LITTLE

    dataset_pieces = _fix_group_lengths(
        _merge(layout.dataset, replacements), {tag >> 16 for tag in replacements}, enc
    )
    meta_header = _group_length_element(META_GROUP_LENGTH, meta_length, meta_enc)
    _write(src, target, [(0, (0, META_START)), (META_GROUP_LENGTH, meta_header)])
    _write(src, target, meta_pieces)
    _write(src, target, dataset_pieces)


def _rewrite_with_pydicom(
    source: IO[bytes],
    target: IO[bytes],
    *,
    changes: list[DataElement],
    implementation_class_uid: str,
    implementation_version_name: str,
) -> None:
    """Deflated files: decompress, change and recompress the dataset (they are small in practice)."""
    import pydicom

    source.seek(0)
    ds = pydicom.dcmread(source)
    for element in changes:
        ds[element.tag] = DataElement(element.tag, element.VR, element.value)
    ds.file_meta.ImplementationClassUID = UID(implementation_class_uid)
    ds.file_meta.ImplementationVersionName = implementation_version_name
    previous = pydicom_config.settings.writing_validation_mode
    pydicom_config.settings.writing_validation_mode = pydicom_config.RAISE
    try:
        ds.save_as(target, enforce_file_format=False)
    except (UnicodeError, ValueError) as exc:
        raise UnencodableValue(f"the new values cannot be written: {exc}") from exc
    finally:
        pydicom_config.settings.writing_validation_mode = previous
