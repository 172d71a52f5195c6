"""Rewriting stored files: only the changed elements and the file meta differ, in every encoding."""

from __future__ import annotations

import io

import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset

from studies.dicom.implementation import IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME
from studies.dicom.splice import MalformedFile, UnencodableValue, file_layout, p10_rewrite

CHANGES = {
    "00100010": {"vr": "PN", "Value": [{"Alphabetic": "Doe^Jane"}]},
    "00081030": {"vr": "LO", "Value": ["Corrected description"]},
    "00102180": {"vr": "SH", "Value": ["Pilot"]},  # absent from every test file: inserted
}
CHANGED_TAGS = {0x00100010, 0x00081030, 0x00102180}


def _changes(json: dict = CHANGES) -> list:
    ds = Dataset.from_json(json)
    return [ds[tag] for tag in ds.keys()]


def _rewrite(data: bytes, json: dict = CHANGES) -> bytes:
    out = io.BytesIO()
    p10_rewrite(
        io.BytesIO(data), out, changes=_changes(json), implementation_class_uid=IMPLEMENTATION_CLASS_UID,
        implementation_version_name=IMPLEMENTATION_VERSION_NAME,
    )
    return out.getvalue()


def _elements(data: bytes) -> dict[int, bytes]:
    layout = file_layout(io.BytesIO(data))
    return {span.tag: data[span.start : span.end] for span in layout.dataset}


@pytest.mark.parametrize(
    "name",
    [
        "CT_small.dcm",  # explicit VR little endian, native pixels
        "MR_small_implicit.dcm",  # implicit VR
        "MR_small_bigendian.dcm",  # explicit VR big endian
        "JPEG2000.dcm",  # encapsulated pixel data of undefined length
        "MR_small_RLE.dcm",
        "UN_sequence.dcm",  # UN of undefined length (implicit VR inside)
        "nested_priv_SQ.dcm",  # nested undefined-length sequences
        "SC_rgb_jpeg.dcm",  # implicit VR dataset under an explicit transfer syntax
        "693_J2KI.dcm",  # carries (0008,0000) and (0010,0000) group lengths
    ],
)
def test_only_changed_elements_and_file_meta_differ(name):
    original = open(get_testdata_file(name), "rb").read()
    rewritten = _rewrite(original)

    before, after = _elements(original), _elements(rewritten)
    assert set(after) == set(before) | CHANGED_TAGS
    group_lengths = {tag for tag in before if tag & 0xFFFF == 0 and tag >> 16 in {0x0008, 0x0010}}
    differing = {tag for tag in after if before.get(tag) != after[tag]}
    assert differing - group_lengths == CHANGED_TAGS
    assert rewritten[:128] == original[:128]  # the preamble is kept

    ds, source = pydicom.dcmread(io.BytesIO(rewritten)), pydicom.dcmread(io.BytesIO(original))
    assert str(ds.PatientName) == "Doe^Jane"
    assert ds.StudyDescription == "Corrected description"
    assert ds.Occupation == "Pilot"
    assert ds.file_meta.ImplementationClassUID == IMPLEMENTATION_CLASS_UID
    assert ds.file_meta.ImplementationVersionName == IMPLEMENTATION_VERSION_NAME
    assert ds.file_meta.TransferSyntaxUID == source.file_meta.TransferSyntaxUID
    assert ds.file_meta.MediaStorageSOPInstanceUID == source.file_meta.MediaStorageSOPInstanceUID
    if "PixelData" in source:
        assert ds.PixelData == source.PixelData
    # pydicom finds the meta group length it needs to read the file at all; check it is exact.
    meta = file_layout(io.BytesIO(rewritten)).meta
    assert ds.file_meta.FileMetaInformationGroupLength == meta[-1].end - meta[1].start


def test_group_lengths_of_changed_groups_are_recomputed():
    rewritten = _rewrite(open(get_testdata_file("693_J2KI.dcm"), "rb").read())
    layout = file_layout(io.BytesIO(rewritten))
    ds = pydicom.dcmread(io.BytesIO(rewritten))
    for group in (0x0008, 0x0010):
        members = [s for s in layout.dataset if s.tag >> 16 == group and s.tag & 0xFFFF]
        assert ds[group << 16].value == sum(s.end - s.start for s in members)


def test_deflated_files_are_rewritten_through_pydicom():
    original = open(get_testdata_file("image_dfl.dcm"), "rb").read()
    ds = pydicom.dcmread(io.BytesIO(_rewrite(original)))
    source = pydicom.dcmread(io.BytesIO(original))
    assert ds.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.1.99"
    assert str(ds.PatientName) == "Doe^Jane"
    assert ds.file_meta.ImplementationClassUID == IMPLEMENTATION_CLASS_UID
    assert ds.PixelData == source.PixelData


def test_values_are_written_in_the_files_character_set():
    change = {"00100010": {"vr": "PN", "Value": [{"Alphabetic": "Müller^Jürgen"}]}}
    rewritten = _rewrite(open(get_testdata_file("CT_small.dcm"), "rb").read(), change)  # ISO_IR 100
    assert _elements(rewritten)[0x00100010].endswith("Müller^Jürgen ".encode("latin-1"))
    assert str(pydicom.dcmread(io.BytesIO(rewritten)).PatientName) == "Müller^Jürgen"


def test_value_the_character_set_cannot_hold_is_refused_not_mangled():
    change = {"00100010": {"vr": "PN", "Value": [{"Alphabetic": "Müller^Jürgen"}]}}
    with pytest.raises(UnencodableValue):
        _rewrite(open(get_testdata_file("MR_small.dcm"), "rb").read(), change)  # no (0008,0005): ASCII


@pytest.mark.parametrize("name", ["MR_truncated.dcm", "rtplan_truncated.dcm"])
def test_truncated_files_are_refused(name):
    with pytest.raises(MalformedFile):
        _rewrite(open(get_testdata_file(name), "rb").read())


def test_file_without_dicm_prefix_is_refused():
    with pytest.raises(MalformedFile):
        _rewrite(b"\x00" * 200)
