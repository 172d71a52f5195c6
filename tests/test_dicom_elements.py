"""The one element-header rule, against element bytes pydicom writes."""

from __future__ import annotations

import struct

import pytest
from pydicom.dataelem import DataElement
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_data_element

from studies.dicom.elements import EXPLICIT_LITTLE, IMPLICIT_LITTLE, ITEM, Encoding


def _encoded(element: DataElement, *, little: bool, implicit: bool) -> bytes:
    buffer = DicomBytesIO()
    buffer.is_little_endian = little
    buffer.is_implicit_VR = implicit
    write_data_element(buffer, element)
    return buffer.getvalue()


@pytest.mark.parametrize(("little", "implicit"), [(True, False), (True, True), (False, False)])
@pytest.mark.parametrize(
    ("tag", "vr", "value"),
    [(0x00100020, "LO", "PID-1"), (0x00280010, "US", 512), (0x7FE00010, "OB", b"\x01\x02" * 300), (0x00081030, "UT", "x" * 9)],
)
def test_head_reads_what_pydicom_writes(little, implicit, tag, vr, value):
    data = _encoded(DataElement(tag, vr, value), little=little, implicit=implicit)
    read_tag, letters, length, head_length = Encoding(little=little, implicit=implicit).head(data, 0)
    assert read_tag == tag
    assert letters == (None if implicit else vr.encode())
    assert head_length + length == len(data)


def test_items_have_no_vr_in_either_encoding():
    item = struct.pack("<HHL", 0xFFFE, 0xE000, 10)
    assert EXPLICIT_LITTLE.head(item, 0) == IMPLICIT_LITTLE.head(item, 0) == (ITEM, None, 10, 8)


def test_a_header_cut_short_is_a_struct_error():
    data = _encoded(DataElement(0x7FE00010, "OB", b"\x00\x00"), little=True, implicit=False)
    with pytest.raises(struct.error):
        EXPLICIT_LITTLE.head(data[:10], 0)
