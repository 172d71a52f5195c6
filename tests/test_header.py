"""The fast header reader gives exactly what pydicom gives, or leaves the file to pydicom.

`studies.dicom.header.header_read` replaces pydicom on the STOW path for the common encodings;
every metadata document, validation failure, top-level value and Pixel Data position it
produces must equal those of the pydicom reader (`_pydicom_header`), which stays in use for
everything else.
"""

from __future__ import annotations

import io
import os
from typing import Any

import orjson
import pydicom
import pytest
from pydicom.data import get_testdata_file, get_testdata_files
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian, generate_uid

from studies.dicom import header as header_module
from studies.dicom.dicomjson import json_dumps
from studies.dicom.header import Header, header_read
from studies.dicom.header_groups import Group, GroupCache
from studies.dicom.reader import NotDicom, _pydicom_header, instance_parse, p10_normalize
from studies.dicom.streams import ConcatReader, FileSlice

CORPUS = sorted(path for path in get_testdata_files("*") if os.path.isfile(path))
COMMON = ["CT_small.dcm", "MR_small.dcm", "JPEG2000.dcm", "MR_small_RLE.dcm", "SC_rgb_rle.dcm", "rtplan.dcm"]


def _stream(data: bytes) -> ConcatReader:
    return p10_normalize(FileSlice(io.BytesIO(data), 0, len(data)))


def _metadata(header: Header | None) -> dict[str, Any]:
    """A header's DICOM JSON as stored (replayed groups are JSON text until then)."""
    assert header is not None
    return orjson.loads(json_dumps(header.metadata))


def _assert_same(fast: Header, slow: Header) -> None:
    assert json_dumps(fast.metadata) == json_dumps(slow.metadata)
    assert fast.errors.reasons == slow.errors.reasons
    assert fast.pixel_data == slow.pixel_data
    assert fast.transfer_syntax_uid == slow.transfer_syntax_uid
    # pydicom's side holds only the attributes the store path asks for.
    assert {tag: fast.values.get(tag) for tag in slow.values} == slow.values
    assert not slow.decode_errors


def _compare(data: bytes, *, validate: bool) -> bool:
    """Asserts agreement; False when the fast reader left the file to pydicom."""
    stream = _stream(data)
    fast = header_read(stream, validate=validate)
    if fast is None:
        return False
    _assert_same(fast, _pydicom_header(stream, validate=validate))
    return True


@pytest.mark.parametrize("validate", [True, False])
def test_agrees_with_pydicom_on_every_test_file(validate):
    read_fast = []
    for path in CORPUS:
        data = open(path, "rb").read()
        try:
            _stream(data)
        except NotDicom:
            continue
        if _compare(data, validate=validate):
            read_fast.append(os.path.basename(path))
    # The common encodings must take the fast path, or this test would compare nothing.
    assert set(COMMON) <= set(read_fast)
    assert len(read_fast) >= 50


def _p10(ds: Dataset, transfer_syntax: str = ExplicitVRLittleEndian) -> bytes:
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = transfer_syntax
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True, implicit_vr=transfer_syntax == ImplicitVRLittleEndian)
    return out.getvalue()


def _edge_dataset() -> Dataset:
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
    ds.SOPInstanceUID = generate_uid()
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.add_new(0x00080008, "CS", "ORIGINAL\\PRIMARY\\\\AXIAL")  # an empty value inside
    ds.add_new(0x00080020, "DA", "2024-01-02")  # invalid DA: a validation failure
    ds.add_new(0x00080050, "SH", "")
    ds.add_new(0x00080054, "AE", " AE1 \\AE2")
    ds.add_new(0x00080090, "PN", "山田^太郎=やまだ^たろう=")  # trailing empty group dropped
    ds.add_new(0x00081030, "LO", "Кириллица\\second ")
    ds.add_new(0x00100010, "PN", "Müller^Jürgen\\Doe^John")
    ds.add_new(0x00100020, "LO", "PID-1")
    ds.add_new(0x00104000, "LT", "one\\two  ")
    ds.add_new(0x00180050, "DS", " 1.5 \\-2e3\\+.5 ")
    ds.add_new(0x00200013, "IS", "+7 ")
    ds.add_new(0x00201041, "DS", "")
    ds.add_new(0x00280010, "US", 16)
    ds.add_new(0x00280011, "US", [16, 17])
    ds.add_new(0x00281052, "DS", "1e400")  # a float pydicom also reads as inf
    ds.add_new(0x00189219, "SS", [-1, 2])
    ds.add_new(0x00209165, "AT", [0x00100010, 0x7FE00010])
    ds.add_new(0x00089459, "FL", 0.1)
    ds.add_new(0x00189087, "FD", [1.0 / 3, -0.0])
    ds.add_new(0x00720007, "SV", [-(2**40)])
    ds.add_new(0x00720008, "UV", [2**40])
    ds.add_new(0x0008010E, "UR", "http://example.org/x  ")
    ds.add_new(0x00400280, "ST", "comment \\ with backslash")
    ds.add_new(0x00700084, "PN", "")
    inner = Dataset()
    inner.add_new(0x00080100, "SH", "CODE")
    inner.add_new(0x00080104, "LO", "Meaning ")
    inner.add_new(0x0040A124, "UI", "1.2.3.4\x00")
    bad = Dataset()
    bad.add_new(0x00080100, "SH", "TOO-LONG-FOR-SH-VALUE")  # validation failure inside a sequence
    ds.add_new(0x00081032, "SQ", Sequence([inner, Dataset(), bad]))
    ds.add_new(0x00081140, "SQ", Sequence([]))
    ds.add_new(0x00091010, "LO", "private, explicit VR")
    ds.add_new(0x7FE00010, "OW", b"\x00\x01" * 64)
    return ds


@pytest.mark.parametrize("validate", [True, False])
def test_edge_values_agree_with_pydicom(validate):
    data = _p10(_edge_dataset())
    assert _compare(data, validate=validate)
    header = header_read(_stream(data), validate=validate)
    metadata = _metadata(header)
    assert metadata["00100010"]["Value"] == [{"Alphabetic": "Müller^Jürgen"}, {"Alphabetic": "Doe^John"}]
    assert metadata["00080090"]["Value"] == [{"Alphabetic": "山田^太郎", "Ideographic": "やまだ^たろう"}]
    assert metadata["00180050"]["Value"] == [1.5, -2000.0, 0.5]
    assert metadata["7FE00010"] == {"vr": "OW", "BulkDataURI": "7FE00010"}  # Pixel Data: a URI at any size
    if validate:
        assert set(header.errors.reasons) == {0x00080020, 0x00081032}  # the SQ is blamed for its item
        assert "00080020" not in header.metadata


def test_undefined_length_sequences_agree_with_pydicom():
    ds = _edge_dataset()
    for element in ds.iterall():
        if element.VR == "SQ":
            element.is_undefined_length = True
            for item in element.value:
                item.is_undefined_length_sequence_item = True
    assert _compare(_p10(ds), validate=True)


def test_implicit_vr_agrees_and_gives_pixel_data_a_uri():
    ds = _edge_dataset()
    del ds[0x00091010]  # private attributes under implicit VR are left to pydicom
    del ds[0x00281052]
    del ds[0x0008010E]  # UR and SV/UV are not in this pydicom's implicit-VR dictionary path
    del ds[0x00720007]
    del ds[0x00720008]
    data = _p10(ds, ImplicitVRLittleEndian)
    assert _compare(data, validate=True)
    # MR_small_implicit has ambiguous US/SS attributes: pydicom reads it, and its Pixel Data
    # (VR "OB or OW" under implicit VR) is OW (PS3.5 A.1 c), given by URI, never inline.
    parsed = instance_parse(open(get_testdata_file("MR_small_implicit.dcm"), "rb"), validate_all=True)
    assert parsed.metadata["7FE00010"] == {"vr": "OW", "BulkDataURI": "7FE00010"}
    assert "InlineBinary" not in parsed.metadata_text


@pytest.mark.parametrize(
    "change",
    [
        lambda ds: ds.add_new(0x00200012, "IS", "1.0"),  # pydicom coerces a float string
        lambda ds: ds.add_new(0x00091011, "UN", b"abcd"),  # pydicom may re-type UN
        lambda ds: setattr(ds, "SpecificCharacterSet", "ISO_IR 144"),  # a character set of its own
    ],
)
def test_unusual_files_are_left_to_pydicom(change):
    ds = _edge_dataset()
    change(ds)
    data = _p10(ds)
    assert header_read(_stream(data), validate=True) is None
    parsed = instance_parse(FileSlice(io.BytesIO(data), 0, len(data)), validate_all=True)
    assert parsed.uids["SOPInstanceUID"] == ds.SOPInstanceUID


def test_truncated_file_is_left_to_pydicom():
    data = _p10(_edge_dataset())
    assert header_read(_stream(data[:-70]), validate=True) is None


def test_pixel_data_position_is_the_stored_files():
    data = open(get_testdata_file("CT_small.dcm"), "rb").read()
    header = header_read(_stream(data), validate=True)
    position, length = header.pixel_data
    assert data[position : position + length] == pydicom.dcmread(io.BytesIO(data)).PixelData


# --- Groups decoded before (studies.dicom.header._GROUPS) -------------------------------


@pytest.fixture
def replays(monkeypatch):
    """The groups replayed from the cache, as (first tag, position) pairs; the cache starts empty."""
    header_module._GROUPS.clear()
    seen: list[tuple[int, int]] = []
    original = header_module._Walker._group_replay

    def spy(self, key, pos, out):
        result = original(self, key, pos, out)
        if result is not None:
            seen.append((key[0], pos))
        return result

    monkeypatch.setattr(header_module._Walker, "_group_replay", spy)
    yield seen
    header_module._GROUPS.clear()


@pytest.mark.parametrize("validate", [True, False])
def test_groups_replayed_from_the_cache_agree_with_pydicom(replays, validate):
    for name in COMMON:
        data = open(get_testdata_file(name), "rb").read()
        before = len(replays)
        assert _compare(data, validate=validate)
        assert _compare(data, validate=validate)  # the same bytes again: groups come from the cache
        assert len(replays) > before, name
    # CT_small: every group but the one holding the character set and Pixel Data's is replayed
    # (0010 holds a sequence, FFFC the trailing padding).
    ct = open(get_testdata_file("CT_small.dcm"), "rb").read()
    replays.clear()
    header_read(_stream(ct), validate=validate)
    assert {tag >> 16 for tag, _pos in replays} == {
        0x0009, 0x0010, 0x0011, 0x0018, 0x0019, 0x0020, 0x0021, 0x0023, 0x0025, 0x0027, 0x0028, 0x0029, 0x0043,
        0xFFFC,
    }  # fmt: skip


def test_a_changed_value_in_a_cached_group_is_decoded_again(replays):
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    first = _p10(ds)
    header_read(_stream(first), validate=True)
    ds.PatientName = "OTHER^NAME"  # group 0010
    ds[0x00431012].value = [7, 8, 9]  # a private group, same length: only the bytes differ
    second = _p10(ds)
    replays.clear()
    assert _compare(second, validate=True)
    header = header_read(_stream(second), validate=True)
    assert _metadata(header)["00100010"]["Value"] == [{"Alphabetic": "OTHER^NAME"}]
    assert _metadata(header)["00431012"]["Value"] == [7, 8, 9]
    assert {tag >> 16 for tag, _pos in replays} >= {0x0018, 0x0028}  # the unchanged groups still replayed


def test_a_cached_group_keeps_its_validation_failures(replays):
    ds = _edge_dataset()
    ds.add_new(0x00100030, "DA", "1970-01-01")  # invalid DA in group 0010, which has no charset attribute
    data = _p10(ds)
    first = header_read(_stream(data), validate=True)
    second = header_read(_stream(data), validate=True)
    assert any(tag >> 16 == 0x0010 for tag, _pos in replays)
    assert second.errors.reasons == first.errors.reasons
    assert second.errors.reasons[0x00100030]
    assert "00100030" not in second.metadata
    assert _compare(data, validate=True)


def test_the_same_group_bytes_under_another_character_set_are_decoded_again(replays):
    def encoded(charset: str) -> bytes:
        ds = _edge_dataset()
        ds.SpecificCharacterSet = charset
        del ds[0x00080090], ds[0x00081030], ds[0x00081032]  # text only Latin-1 can hold
        ds[0x00100010].value = "M\xfcller^J"
        data = _p10(ds)
        return data

    latin = encoded("ISO_IR 100")
    utf8 = latin.replace(b"ISO_IR 100", b"ISO_IR 192")  # same bytes in group 0010, read as UTF-8
    assert _metadata(header_read(_stream(latin), validate=True))["00100010"]["Value"] == [{"Alphabetic": "Müller^J"}]
    replays.clear()
    # \xfc is not UTF-8: the fast reader gives the file up rather than replay the Latin-1 decoding.
    assert header_read(_stream(utf8), validate=True) is None
    assert 0x0010 not in {tag >> 16 for tag, _pos in replays}


def test_the_group_cache_is_bounded():
    cache = GroupCache()
    group = Group(raw=b"x" * 4096, members={}, values=(), failures=(), last_tag=0, text=False)
    for n in range(3 * cache.MAX_BYTES // 4096):
        cache.add((n, "latin_1", False, True), group)
        assert cache.size <= cache.MAX_BYTES
    for _ in range(10):
        cache.add((1, "latin_1", False, True), group)
    assert len(cache.entries[(1, "latin_1", False, True)]) == cache.PER_KEY


def test_a_header_built_from_cached_groups_shares_nothing_that_can_change(replays):
    data = open(get_testdata_file("CT_small.dcm"), "rb").read()
    first = header_read(_stream(data), validate=True)
    expected = json_dumps(first.metadata)
    second = header_read(_stream(data), validate=True)
    assert replays
    shared = 0
    for key, element in list(second.metadata.items()):  # a caller that edits its header in place
        if isinstance(element, orjson.Fragment):  # replayed: JSON text, immutable
            shared += 1
            second.metadata[key] = {"vr": "XX"}
            continue
        element.setdefault("Value", []).append("changed")
        element["vr"] = "XX"
    assert shared > 200  # CT_small's repeated groups were replayed, not walked
    third = header_read(_stream(data), validate=True)
    assert json_dumps(third.metadata) == expected
    assert all(isinstance(values, tuple) for values in third.values.values())


def test_a_few_values_of_a_replayed_header_read_alone_equal_the_whole_document_s(replays):
    ct = open(get_testdata_file("CT_small.dcm"), "rb").read()
    instance_parse(_stream(ct), validate_all=True)
    parsed = instance_parse(_stream(ct), validate_all=True)  # its groups replayed: values are JSON text
    assert replays
    keys = {"00180015", "00181030", "00080022", "00090010", "00091001", "00100010", "7FE00010", "not a key"}
    whole = orjson.loads(json_dumps(parsed.metadata))
    assert parsed.metadata_values_of(keys) == {key: value for key, value in whole.items() if key in keys}
    assert len(parsed.metadata_values_of(keys)) >= 5  # the tags CT_small holds, private creator and all
