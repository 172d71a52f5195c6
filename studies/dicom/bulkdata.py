"""Bulk data (PS3.18 §8.6, F.2.6): the URIs metadata carries and where their bytes are in a stored file.

Stored metadata names a binary value by its path in the instance (`7FE00010`, or
`00880200/0/7FE00010` for a value in item 0 of a sequence), written by
`studies.dicom.dicomjson.bulk_json`. `bulkdata_uris_resolve` makes that an absolute URI when the
metadata is served; `bulk_value_locate` finds the value again in the stored file: its position
and length for Explicit and Implicit VR Little Endian (read from the file by range, never whole),
or the value itself for the encodings positions mean nothing in (deflate) or this walk does not
follow (big endian), read by pydicom.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import IO

import pydicom

from dicomsvc.errors import BadRequest, BulkDataNotFound
from studies.dicom.elements import (
    EXPLICIT_LITTLE,
    IMPLICIT_LITTLE,
    ITEM,
    ITEM_DELIMITER,
    SEQUENCE_DELIMITER,
    UNDEFINED_LENGTH,
    Encoding,
)
from studies.dicom.transfer_syntaxes import DEFLATED, IMPLICIT_VR_LITTLE_ENDIAN

BULK_KEY = '"BulkDataURI":"'
META_START = 132  # stored files are normalised: preamble, DICM, then the file meta
_JSON_ESCAPED = re.compile(r'["\\\x00-\x1f]')  # what JSON writes escaped in a string
_PATH = re.compile(r"[0-9A-Fa-f]{8}(?:/[0-9]{1,6}/[0-9A-Fa-f]{8})*")
INVALID_PATH = "The bulk data path '{}' is not valid: expected a tag (7FE00010), or sequence tag/item/tag."


def bulkdata_uris_resolve(document: str, *, instance_url: str) -> str:
    """A stored DICOM JSON text with its BulkDataURIs made absolute under `instance_url`.

    A plain text replacement: in compact JSON `"BulkDataURI":"` can only be a member name (a
    quote inside a string value is escaped), and the metadata is served without parsing it.
    """
    prefix = f"{instance_url}/bulkdata/"
    if _JSON_ESCAPED.search(prefix):
        prefix = json.dumps(prefix)[1:-1]
    # It runs once per document of a metadata response: replace() alone scans the text once and
    # returns it unchanged when nothing matches.
    return document.replace(BULK_KEY, BULK_KEY + prefix)


def tag_path_parse(text: str) -> tuple[int, ...]:
    """`00880200/0/7FE00010` -> (0x00880200, 0, 0x7FE00010); 400 for anything else."""
    if not _PATH.fullmatch(text):
        raise BadRequest(INVALID_PATH.format(text))
    return tuple(int(piece, 16) if index % 2 == 0 else int(piece) for index, piece in enumerate(text.split("/")))


@dataclass(frozen=True)
class BulkValue:
    """Where a value is: `offset` and `length` in the file, or its bytes in `data` (offset -1)."""

    offset: int
    length: int
    data: bytes = b""
    encapsulated: bool = False  # undefined-length Pixel Data: served as frames, not as bytes


class _Walk:
    """Element headers read one at a time from a seekable file (through `Encoding.head`)."""

    def __init__(self, fileobj: IO[bytes], encoding: Encoding) -> None:
        self.file = fileobj
        self.encoding = encoding
        self.size = fileobj.seek(0, 2)

    def head(self, pos: int, encoding: Encoding | None = None) -> tuple[int, bytes | None, int, int]:
        self.file.seek(pos)
        buf = self.file.read(12)
        if len(buf) < 8:
            raise BulkDataNotFound()
        return (encoding or self.encoding).head(buf, 0)

    def skip_items(self, pos: int) -> int:
        """Past an undefined-length sequence or encapsulated value starting at `pos`."""
        while True:
            tag, _vr, length, _ = self.head(pos, IMPLICIT_LITTLE)
            if tag == SEQUENCE_DELIMITER:
                return pos + 8
            if tag != ITEM:
                raise BulkDataNotFound()
            pos = self.find(pos + 8, None, None)[1] if length == UNDEFINED_LENGTH else pos + 8 + length

    def find(self, pos: int, end: int | None, wanted: int | None) -> tuple[tuple[int, int, bytes | None] | None, int]:
        """((value position, length, VR) of `wanted`, None if absent) and where the scan stopped."""
        while end is None or pos < end:
            if end is None and pos >= self.size:
                break
            tag, vr, length, head_length = self.head(pos)
            if tag == ITEM_DELIMITER and end is None:
                return None, pos + 8
            value_pos = pos + head_length
            if tag == wanted:
                return (value_pos, length, vr), pos
            if wanted is not None and tag > wanted and tag >> 16 != 0xFFFE:
                return None, pos
            if length == UNDEFINED_LENGTH:
                pos = self.skip_items(value_pos)
            else:
                pos = value_pos + length
        return None, pos

    def item(self, pos: int, index: int) -> tuple[int, int | None]:
        """(start, end or None) of item `index` of the sequence value at `pos`."""
        for _ in range(index + 1):
            tag, _vr, length, _ = self.head(pos, IMPLICIT_LITTLE)
            if tag != ITEM:
                raise BulkDataNotFound()
            start = pos + 8
            end = None if length == UNDEFINED_LENGTH else start + length
            pos = self.find(start, None, None)[1] if end is None else end
        return start, end


def _meta_end(fileobj: IO[bytes]) -> int:
    walk = _Walk(fileobj, EXPLICIT_LITTLE)
    pos = META_START
    while True:
        fileobj.seek(pos)
        if fileobj.read(2) != b"\x02\x00":
            return pos
        _tag, _vr, length, head_length = walk.head(pos)
        pos += head_length + length


def _locate_in_place(fileobj: IO[bytes], *, implicit: bool, path: tuple[int, ...]) -> BulkValue:
    walk = _Walk(fileobj, IMPLICIT_LITTLE if implicit else EXPLICIT_LITTLE)
    pos, end = _meta_end(fileobj), None
    for depth in range(0, len(path), 2):
        found, _ = walk.find(pos, end, path[depth])
        if found is None:
            raise BulkDataNotFound()
        value_pos, length, _vr = found
        if depth == len(path) - 1:
            if length == UNDEFINED_LENGTH:
                return BulkValue(value_pos, 0, encapsulated=True)
            if value_pos + length > walk.size:
                raise BulkDataNotFound()
            return BulkValue(value_pos, length)
        pos, end = walk.item(value_pos, path[depth + 1])
    raise BulkDataNotFound()


def _locate_with_pydicom(fileobj: IO[bytes], path: tuple[int, ...]) -> BulkValue:
    fileobj.seek(0)
    dataset = pydicom.dcmread(fileobj)
    try:
        for depth in range(0, len(path) - 1, 2):
            dataset = dataset[path[depth]].value[path[depth + 1]]
        element = dataset[path[-1]]
    except (KeyError, IndexError, TypeError) as exc:
        raise BulkDataNotFound() from exc
    if not isinstance(element.value, bytes):
        raise BulkDataNotFound()
    if element.tag == 0x7FE00010 and dataset.get_item(element.tag, keep_deferred=True).is_undefined_length:
        return BulkValue(-1, 0, encapsulated=True)
    return BulkValue(-1, len(element.value), data=element.value)


def bulk_value_locate(fileobj: IO[bytes], *, transfer_syntax_uid: str, path: tuple[int, ...]) -> BulkValue:
    """Where the value at `path` is in a stored file; BulkDataNotFound when it has none there."""
    uid = pydicom.uid.UID(transfer_syntax_uid)
    if transfer_syntax_uid in DEFLATED or not uid.is_transfer_syntax or not uid.is_little_endian:
        return _locate_with_pydicom(fileobj, path)
    return _locate_in_place(fileobj, implicit=transfer_syntax_uid == IMPLICIT_VR_LITTLE_ENDIAN, path=path)

