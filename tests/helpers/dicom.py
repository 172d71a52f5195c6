"""DICOM file factories: pydicom test files with fresh UIDs, and the UIDs back out of bytes."""

from __future__ import annotations

import io
import struct

import pydicom
from pydicom.data import get_testdata_file
from pydicom.uid import generate_uid


def dicom_bytes(name: str = "CT_small.dcm", **overrides: object) -> bytes:
    """A pydicom test file with fresh Study/Series/SOP UIDs (and any attribute overrides)."""
    ds = pydicom.dcmread(get_testdata_file(name))
    ds.StudyInstanceUID = overrides.pop("StudyInstanceUID", None) or generate_uid()
    ds.SeriesInstanceUID = overrides.pop("SeriesInstanceUID", None) or generate_uid()
    sop = overrides.pop("SOPInstanceUID", None) or generate_uid()
    ds.SOPInstanceUID = sop
    if "MediaStorageSOPInstanceUID" in ds.file_meta:
        ds.file_meta.MediaStorageSOPInstanceUID = sop
    for key, value in overrides.items():
        if value is None:
            if key in ds:
                delattr(ds, key)
        else:
            setattr(ds, key, value)
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


def study_files(
    count: int, *, name: str = "CT_small.dcm", study_uid: str | None = None, **overrides: object
) -> list[bytes]:
    """`count` instances of one study (a fresh UID unless given) in two series, numbered from 1."""
    study_uid = study_uid or generate_uid()
    series = [generate_uid(), generate_uid()]
    return [
        dicom_bytes(
            name, StudyInstanceUID=study_uid, SeriesInstanceUID=series[index % 2], InstanceNumber=index + 1,
            **overrides,
        )
        for index in range(count)
    ]


def uids_of(data: bytes) -> tuple[str, str, str]:
    ds = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True)
    return str(ds.StudyInstanceUID), str(ds.SeriesInstanceUID), str(ds.SOPInstanceUID)


def read(data: bytes) -> pydicom.Dataset:
    return pydicom.dcmread(io.BytesIO(data))


def nested_bytes(depth: int, name: str = "CT_small.dcm", **overrides: object) -> bytes:
    """`dicom_bytes` holding a ContentSequence nested `depth` levels deep (undefined lengths).

    Encoded by hand: pydicom writes sequences recursively and cannot write the depths the
    server must refuse."""
    data = dicom_bytes(name, ContentSequence=[], **overrides)  # written as an empty defined-length SQ
    order = ">" if b"\x00\x40\xa7\x30SQ" in data else "<"
    tag = struct.pack(f"{order}HH", 0x0040, 0xA730)
    vr = b"SQ\x00\x00" if tag + b"SQ" in data else b""  # implicit VR writes none
    empty = tag + vr + struct.pack(f"{order}L", 0)
    assert data.count(empty) == 1
    opening = tag + vr + struct.pack(f"{order}LHHL", 0xFFFFFFFF, 0xFFFE, 0xE000, 0xFFFFFFFF)
    closing = struct.pack(f"{order}HHLHHL", 0xFFFE, 0xE00D, 0, 0xFFFE, 0xE0DD, 0)
    return data.replace(empty, opening * depth + closing * depth)
