"""A single-pass reader for the header of a little-endian DICOM file: DICOM JSON and top-level values.

pydicom builds an object per attribute and converts each value twice (to its Python type, then
to JSON), which was most of a STOW's CPU (docs/benchmarks.md). This walks the
encoded elements once and produces exactly what `studies.dicom.dicomjson.dataset_json_dict`
produces from pydicom, for the common case only: Explicit or Implicit VR Little Endian
encoding (any transfer syntax but deflate and big endian), a default, Latin-1 or UTF-8
character set, and values pydicom would read without coercion. On anything else it gives
up (`header_read` returns None) and the caller reads the file with pydicom instead;
`tests/test_header.py` checks both agree on every pydicom test file.

Values the caller never needs in memory (bulk VRs: Pixel Data above all) are skipped by
position, never read. A top-level group whose bytes were decoded before (the slices of a series
share most of theirs) is taken from a bounded per-process cache instead of walked again; the
cache holds only immutable data (bytes, strings, numbers, tuples), so no header can change
what another one is given.

One element's value is decoded by `studies.dicom.header_values`; the cached groups are kept
by `studies.dicom.header_groups`. This module walks the elements.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from itertools import islice
from typing import Any

import orjson
from pydicom.datadict import dictionary_VR
from pydicom.uid import UID

from studies.dicom.dicomjson import (
    BULK_THRESHOLD_DEFAULT,
    BULK_VRS,
    TRAILING_PADDING,
    ElementErrors,
    bulk_json,
)
from studies.dicom.elements import (
    EXPLICIT_LITTLE,
    IMPLICIT_LITTLE,
    ITEM,
    ITEM_DELIMITER,
    LONG_VRS,
    MAX_SEQUENCE_DEPTH,
    PIXEL_DATA,
    SEQUENCE_DELIMITER,
    SPECIFIC_CHARACTER_SET,
    TRANSFER_SYNTAX_UID,
    UNDEFINED_LENGTH,
    SequenceTooDeep,
)
from studies.dicom.header_groups import Group, GroupCache, GroupKey
from studies.dicom.header_values import (
    CACHED_VALUE_BYTES,
    CHARSET_VRS,
    NUMBERS,
    GiveUp,
    value_decode,
    value_decode_cached,
)
from studies.dicom.streams import Readable
from studies.dicom.transfer_syntaxes import DEFLATED, EXPLICIT_VR_BIG_ENDIAN

READ_AHEAD = 64 * 1024
META_START = 132  # after the 128-byte preamble and DICM of a normalised stream

KNOWN_VRS = LONG_VRS | {
    "AE", "AS", "AT", "CS", "DA", "DS", "DT", "FL", "FD", "IS", "LO", "LT", "PN", "SH", "SL", "SS", "ST", "TM",
    "UI", "UL", "US",
}  # fmt: skip
_VR_NAMES = {vr.encode(): vr for vr in KNOWN_VRS if vr != "UN"}
CHARSETS = {"": "latin_1", "ISO_IR 6": "latin_1", "ISO_IR 100": "latin_1", "ISO_IR 192": "utf_8"}


@dataclass
class Header:
    """What the store path needs of a header.

    `metadata` belongs to this header alone; values a cached group replayed into it are
    `orjson.Fragment`s (immutable JSON text, shared), written as they are by `json_dumps`."""

    transfer_syntax_uid: str
    metadata: dict[str, Any]
    errors: ElementErrors
    # Top-level attributes: tag -> the values as pydicom's str() gives them (numbers as numbers).
    values: dict[int, tuple[Any, ...]] = field(default_factory=dict)
    # Pixel Data: (position of its value in the stream, encoded length), None if absent.
    pixel_data: tuple[int, int] | None = None
    # Top-level attributes pydicom could not decode: tag -> reason (pydicom path only).
    decode_errors: dict[int, str] = field(default_factory=dict)


class _Source:
    """Random access to a seekable stream through one read-ahead window."""

    def __init__(self, stream: Readable) -> None:
        self.stream = stream
        self.start = 0
        self.buf = b""
        self.size = stream.seek(0, 2)

    def get(self, pos: int, size: int) -> bytes:
        data = self.get_available(pos, size)
        if len(data) < size:
            raise GiveUp("truncated")
        return data

    def get_available(self, pos: int, size: int) -> bytes:
        buf, offset = self.window(pos, size)
        return buf[offset : offset + size]

    def window(self, pos: int, size: int) -> tuple[bytes, int]:
        """The read-ahead buffer and `pos`'s offset in it, holding [pos, pos + size) unless
        the stream ends first: for callers that unpack in place rather than slice."""
        offset = pos - self.start
        if offset < 0 or offset + size > len(self.buf):
            self.stream.seek(pos)
            self.buf = self.stream.read(max(size, READ_AHEAD))
            self.start = pos
            offset = 0
        return self.buf, offset


_GROUPS = GroupCache()


class _Walker:
    def __init__(self, source: _Source, *, implicit: bool, validate: bool, bulk_threshold: int) -> None:
        self.src = source
        self.bulk_threshold = bulk_threshold
        self.implicit = implicit
        self.heads = IMPLICIT_LITTLE if implicit else EXPLICIT_LITTLE
        self.validate = validate
        self.encoding = "latin_1"
        self.texts = 0  # character-set text values decoded so far
        self.errors = ElementErrors()
        self.values: dict[int, tuple[Any, ...]] = {}
        self.pixel_data: tuple[int, int] | None = None
        self.depth = 0  # sequences around the element being read

    def dataset(
        self, pos: int, end: int | None, *, top: bool, owner: int = 0, prefix: str = ""
    ) -> tuple[dict[str, Any], int]:
        """JSON of the elements from `pos` to `end` (None: to the item delimiter, or EOF at top level)."""
        # The loop runs once per attribute of every STOW part: names are bound to locals and
        # element headers unpacked in the read-ahead buffer rather than sliced out of it.
        out: dict[str, Any] = {}
        previous = -1
        src = self.src
        size = src.size
        window = src.window
        implicit = self.implicit
        head = self.heads.head
        values = self.values
        # Top level: the group being walked, where it started and how much of the output came
        # before it (for _GROUPS); not `keep` while it holds something a replay cannot reproduce.
        group_now = -1
        group_start = 0
        group_key: GroupKey = (0, "", False, False, 0)
        marks = (0, 0, 0, 0)
        keep = False
        while True:
            if end is not None:
                if pos >= end:
                    if pos > end:
                        raise GiveUp("element overruns its item")
                    return out, pos
            elif top:
                if pos >= size:
                    if keep:
                        self._group_keep(group_key, group_start, pos, marks, previous, out)
                    return out, pos
                if pos + 8 > size:
                    raise GiveUp("trailing bytes")  # a partial element header needs pydicom
            buf = src.buf
            off = pos - src.start
            if off < 0 or off + 12 > len(buf):
                buf, off = window(pos, 12)
            if len(buf) - off < 8:
                raise GiveUp("truncated")
            tag, vr_letters, length, head_length = head(buf, off)  # struct.error: truncated
            group = tag >> 16
            if tag == ITEM_DELIMITER and not top and end is None:
                return out, pos + 8
            if group == 0xFFFE or tag <= previous:
                raise GiveUp("delimiter out of place, or tags out of order")
            if top and group != group_now:
                if keep:
                    self._group_keep(group_key, group_start, pos, marks, previous, out)
                group_key = (tag, self.encoding, implicit, self.validate, self.bulk_threshold)
                replayed = self._group_replay(group_key, pos, out)
                if replayed is not None:
                    pos, previous = replayed
                    group_now, keep = -1, False
                    continue
                group_now, group_start, keep = group, pos, True
                marks = (len(out), len(values), len(self.errors.reasons), self.texts)
                buf, off = window(pos, 12)  # the look-up may have moved the window
            previous = tag
            element = tag & 0xFFFF
            value_pos = pos + head_length
            vr: str | None
            if implicit:
                vr = self._implicit_vr(tag) if element else "UL"
            else:
                vr = _VR_NAMES.get(vr_letters)  # type: ignore[arg-type]
                if vr is None:
                    # Unknown bytes, or UN: pydicom replaces UN by a dictionary's VR
                    raise GiveUp(f"VR {vr_letters!r}")
            if tag == PIXEL_DATA and top:
                self.pixel_data = (value_pos, length)
                keep = False
            if length == UNDEFINED_LENGTH:
                if vr == "SQ":
                    items, pos = self.sequence(value_pos, None, owner=owner or tag, prefix=prefix + _tag_key(tag))
                    self._add_sequence(out, tag, element, items)
                    continue
                if tag != PIXEL_DATA or not top:
                    raise GiveUp("undefined length outside SQ and Pixel Data")
                pos = self._skip_fragments(value_pos)
                out[_tag_key(tag)] = bulk_json(
                    vr, tag, prefix=prefix, length=length, raw=None, threshold=self.bulk_threshold
                )
                continue
            pos = value_pos + length
            if pos > size:
                raise GiveUp("value runs past the end of the file")
            if group == 0x0002 or element == 0 or tag == TRAILING_PADDING:
                continue
            if vr in BULK_VRS:
                # Read only a value that may go inline; the rest stays in the file.
                inline = self.src.get(value_pos, length) if length <= self.bulk_threshold else None
                out[_TAG_KEYS.get(tag) or _tag_key(tag)] = bulk_json(
                    vr, tag, prefix=prefix, length=length, raw=inline, threshold=self.bulk_threshold
                )
                continue
            if vr == "SQ":
                items, _ = self.sequence(value_pos, pos, owner=owner or tag, prefix=prefix + _tag_key(tag))
                self._add_sequence(out, tag, element, items)
                continue
            off = value_pos - src.start
            if off < 0 or off + length > len(buf):
                buf, off = window(value_pos, length)
            raw = buf[off : off + length]
            if len(raw) < length:
                raise GiveUp("truncated")
            if tag == SPECIFIC_CHARACTER_SET:
                self._charset(raw, top=top)
                keep = False
            # The element's value, inline: this runs once per attribute.
            if vr in CHARSET_VRS:
                self.texts += 1
            decode = value_decode_cached if len(raw) <= CACHED_VALUE_BYTES else value_decode
            strings, json_values, failure = decode(vr, raw, self.encoding, self.validate)
            if top:
                values[tag] = json_values if vr in NUMBERS else strings
            if failure:
                self.errors.add(owner or tag, failure)
                continue
            if vr == "PN":
                json_values = tuple(dict(name) for name in json_values)  # cached dicts stay unshared
            out[_TAG_KEYS.get(tag) or _tag_key(tag)] = (
                {"vr": vr, "Value": list(json_values)} if json_values else {"vr": vr}
            )

    def _group_keep(
        self,
        key: GroupKey,
        start: int,
        stop: int,
        marks: tuple[int, int, int, int],
        last_tag: int,
        out: dict[str, Any],
    ) -> None:
        """Cache the group just walked: what it added to the output since `marks` was taken."""
        if stop - start > GroupCache.MAX_SPAN:
            return
        n_out, n_values, n_errors, texts = marks
        # Only what JSON writes unchanged: orjson refuses integers beyond 64 bits, and writes a
        # non-finite float as null, which no decoded value is (so a text holding "null" costs a
        # walk next time, never a wrong value).
        try:
            encoded = [(key, orjson.dumps(value)) for key, value in islice(out.items(), n_out, None)]
        except TypeError:
            return
        if any(b"null" in text for _key, text in encoded):
            return
        group = Group(
            raw=self.src.get(start, stop - start),
            members={key: orjson.Fragment(text) for key, text in encoded},
            values=tuple(islice(self.values.items(), n_values, None)),
            failures=tuple(islice(self.errors.reasons.items(), n_errors, None)),
            last_tag=last_tag,
            text=self.texts > texts,
        )
        _GROUPS.add(key, group)

    def _group_replay(self, key: GroupKey, pos: int, out: dict[str, Any]) -> tuple[int, int] | None:
        """Replay a cached group whose bytes start at `pos`: (position after it, its last tag), or None."""
        candidates = _GROUPS.entries.get(key)
        if not candidates:
            return None
        window = self.src.window
        for group in candidates:
            buf, off = window(pos, len(group.raw))
            if buf.startswith(group.raw, off):
                break
        else:
            return None
        if group.text:
            self.texts += 1
        out.update(group.members)
        self.values.update(group.values)
        for tag, failure in group.failures:
            self.errors.add(tag, failure)
        return pos + len(group.raw), group.last_tag

    def sequence(
        self, pos: int, end: int | None, *, owner: int, prefix: str
    ) -> tuple[list[dict[str, Any]], int]:
        """The items of a sequence; `prefix` is the sequence's path ("{tag}" or "{outer path}/{tag}")."""
        if self.depth >= MAX_SEQUENCE_DEPTH:
            raise SequenceTooDeep()  # final: pydicom would refuse it too, after more work
        self.depth += 1
        items, pos = self._items(pos, end, owner=owner, prefix=prefix)
        self.depth -= 1
        return items, pos

    def _items(self, pos: int, end: int | None, *, owner: int, prefix: str) -> tuple[list[dict[str, Any]], int]:
        items: list[dict[str, Any]] = []
        while True:
            if end is not None and pos >= end:
                if pos > end:
                    raise GiveUp("item overruns its sequence")
                return items, pos
            tag, _vr, length, _size = IMPLICIT_LITTLE.head(self.src.get(pos, 8), 0)
            if tag == SEQUENCE_DELIMITER and end is None:
                return items, pos + 8
            if tag != ITEM:
                raise GiveUp("not an item")
            if length == UNDEFINED_LENGTH:
                item, pos = self.dataset(pos + 8, None, top=False, owner=owner, prefix=f"{prefix}/{len(items)}/")
            else:
                item, pos = self.dataset(
                    pos + 8, pos + 8 + length, top=False, owner=owner, prefix=f"{prefix}/{len(items)}/"
                )
            items.append(item)

    def _skip_fragments(self, pos: int) -> int:
        while True:
            tag, _vr, length, _size = IMPLICIT_LITTLE.head(self.src.get(pos, 8), 0)
            if tag == SEQUENCE_DELIMITER:
                return pos + 8
            if tag != ITEM or length == UNDEFINED_LENGTH or pos + 8 + length > self.src.size:
                raise GiveUp("malformed encapsulated Pixel Data")
            pos += 8 + length

    def _implicit_vr(self, tag: int) -> str:
        if tag >> 16 & 1:
            raise GiveUp("private attribute under implicit VR")
        try:
            vr = str(dictionary_VR(tag))
        except KeyError:
            raise GiveUp("attribute not in the dictionary under implicit VR") from None
        if " or " in vr:
            # Ambiguous: an OB/OW pair is OW under implicit VR (PS3.5 §A.1 c); US/SS need pydicom.
            if all(choice in BULK_VRS for choice in vr.split(" or ")):
                return "OW"
            raise GiveUp("ambiguous VR")
        return vr

    def _charset(self, raw: bytes, *, top: bool) -> None:
        name = raw.decode("latin_1").rstrip(" \x00")
        encoding = CHARSETS.get(name)
        if not top or encoding is None or "\\" in name or (self.texts and encoding != self.encoding):
            raise GiveUp("character set")
        self.encoding = encoding

    def _add_sequence(self, out: dict[str, Any], tag: int, element: int, items: list[dict[str, Any]]) -> None:
        if tag >> 16 == 0x0002 or element == 0:
            return
        out[f"{tag:08X}"] = {"vr": "SQ", "Value": items} if items else {"vr": "SQ"}


_TAG_KEYS: dict[int, str] = {}


def _tag_key(tag: int) -> str:
    """DICOM JSON's key of a tag ("0020000D"), formatted once per process for the first 64K tags."""
    key = _TAG_KEYS.get(tag)
    if key is None:
        key = f"{tag:08X}"
        if len(_TAG_KEYS) < 65536:
            _TAG_KEYS[tag] = key
    return key


def _file_meta(src: _Source) -> tuple[str, int]:
    """(Transfer Syntax UID, position of the dataset) from the group 0002 elements."""
    pos = META_START
    ts = None
    while True:
        buf, off = src.window(pos, 12)
        if len(buf) - off < 8 or buf[off : off + 2] != b"\x02\x00":
            break
        tag, vr_letters, length, head_length = EXPLICIT_LITTLE.head(buf, off)  # struct.error: truncated
        value_pos = pos + head_length
        if length == UNDEFINED_LENGTH or vr_letters is None or vr_letters.decode("latin_1") not in KNOWN_VRS:
            raise GiveUp("file meta")
        if tag == TRANSFER_SYNTAX_UID:
            ts = src.get(value_pos, length).decode("latin_1").rstrip("\x00 ")
        pos = value_pos + length
    if not ts:
        raise GiveUp("no transfer syntax")
    return ts, pos


def header_read(stream: Readable, *, validate: bool, bulk_threshold: int = BULK_THRESHOLD_DEFAULT) -> Header | None:
    """The header of a normalised P10 stream (preamble, DICM, meta), or None when pydicom must read it."""
    src = _Source(stream)
    try:
        if src.get_available(128, 4) != b"DICM":
            return None
        ts, start = _file_meta(src)
        uid = UID(ts)
        if ts == EXPLICIT_VR_BIG_ENDIAN or ts in DEFLATED or not uid.is_transfer_syntax:
            return None
        walker = _Walker(src, implicit=uid.is_implicit_VR, validate=validate, bulk_threshold=bulk_threshold)
        metadata, _ = walker.dataset(start, None, top=True)
    except (GiveUp, struct.error, UnicodeDecodeError, ValueError):
        return None
    return Header(
        transfer_syntax_uid=ts,
        metadata=metadata,
        errors=walker.errors,
        values=walker.values,
        pixel_data=walker.pixel_data,
    )
