"""Where a DICOM element's value starts and how long it is: the one element-header rule.

Every scanner of encoded datasets reads element headers through `Encoding.head`: the header
reader's walk (`studies.dicom.header`), the splice writer's scan (`studies.dicom.splice`) and the
frame index's walk over Pixel Data items (`studies.dicom.reader`). An element starts with group
and element numbers; in explicit VR two VR letters follow, then a 16-bit length, or for the VRs
in `LONG_VRS` two reserved bytes and a 32-bit length; in implicit VR, and for items and
delimiters (group FFFE) in either, a 32-bit length follows directly (PS3.5 §7.1, §7.5).
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass, field

ITEM = 0xFFFEE000
ITEM_DELIMITER = 0xFFFEE00D
SEQUENCE_DELIMITER = 0xFFFEE0DD
UNDEFINED_LENGTH = 0xFFFFFFFF
PIXEL_DATA = 0x7FE00010
SPECIFIC_CHARACTER_SET = 0x00080005
TRANSFER_SYNTAX_UID = 0x00020010
META_GROUP_LENGTH = 0x00020000
# Explicit VRs with two reserved bytes and a 32-bit length (PS3.5 §7.1.2).
LONG_VRS = frozenset({"OB", "OD", "OF", "OL", "OV", "OW", "SQ", "SV", "UC", "UN", "UR", "UT", "UV"})
_LONG_VR_BYTES = frozenset(vr.encode() for vr in LONG_VRS)

# The deepest nesting of sequences a stored file may have: a sequence in an item of a sequence
# ... counts one level each. Real objects nest a handful of levels (structured reports a dozen
# or so); every scanner refuses a deeper file the same way, long before Python's recursion
# limit or orjson's depth limit (255 containers, three per level) is reached.
MAX_SEQUENCE_DEPTH = 64


class SequenceTooDeep(Exception):
    """The file nests sequences deeper than MAX_SEQUENCE_DEPTH; the instance cannot be stored."""

    def __init__(self) -> None:
        super().__init__(f"its sequences are nested more than {MAX_SEQUENCE_DEPTH} levels deep")


# (tag, VR letters or None, value length, header length)
Head = tuple[int, "bytes | None", int, int]


def _head_reader(*, little: bool, implicit: bool) -> Callable[[bytes, int], Head]:
    # The reader runs once per element scanned: everything it needs is bound in its closure,
    # it unpacks in place, and it allocates nothing but its result.
    order = "<" if little else ">"
    unpack = struct.Struct(f"{order}HHL").unpack_from  # implicit VR: group, element, 32-bit length
    unpack_long = struct.Struct(f"{order}L").unpack_from
    long_vrs = _LONG_VR_BYTES

    def implicit_head(buf: bytes, off: int) -> Head:
        group, element, length = unpack(buf, off)
        return group << 16 | element, None, length, 8

    def explicit_head(buf: bytes, off: int) -> Head:
        group, element, length = unpack(buf, off)
        if group == 0xFFFE:  # items and delimiters carry no VR
            return group << 16 | element, None, length, 8
        vr = buf[off + 4 : off + 6]
        if vr in long_vrs:
            return group << 16 | element, vr, unpack_long(buf, off + 8)[0], 12
        # The 32-bit number unpacked above holds the two VR letters and the 16-bit length.
        return group << 16 | element, vr, length >> 16 if little else length & 0xFFFF, 8

    return implicit_head if implicit else explicit_head


@dataclass(frozen=True)
class Encoding:
    """How a dataset's elements are encoded: byte order and whether VRs are written."""

    little: bool
    implicit: bool
    # head(buf, off): the header of the element or item at `buf[off:]`; struct.error when
    # `buf` ends inside it.
    head: Callable[[bytes, int], Head] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "head", _head_reader(little=self.little, implicit=self.implicit))

    @property
    def endian(self) -> str:
        return "<" if self.little else ">"


EXPLICIT_LITTLE = Encoding(little=True, implicit=False)
IMPLICIT_LITTLE = Encoding(little=True, implicit=True)
