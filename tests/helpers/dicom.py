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


BIG_OB = 0x00091001  # a private OB above the default bulk data threshold
SMALL_OB = 0x00091002  # one below it
BIG_OB_VALUE = bytes(range(256)) * 11 + bytes(range(184))


def binary_attributes_bytes(name: str = "CT_small.dcm", *, transfer_syntax: str | None = None) -> bytes:
    """A test file with binary attributes besides Pixel Data: a private OB of 3000 bytes, one of 16,
    and an Icon Image Sequence whose item holds a 64x64 Pixel Data (fresh UIDs)."""
    ds = read(dicom_bytes(name))
    ds.private_block(0x0009, "ACME", create=True)
    ds.add_new(BIG_OB, "OB", BIG_OB_VALUE)
    ds.add_new(SMALL_OB, "OB", b"0123456789abcdef")
    icon = pydicom.Dataset()
    icon.Rows, icon.Columns, icon.BitsAllocated, icon.BitsStored, icon.HighBit = 64, 64, 8, 8, 7
    icon.SamplesPerPixel, icon.PixelRepresentation, icon.PhotometricInterpretation = 1, 0, "MONOCHROME2"
    icon.add_new(0x7FE00010, "OB", bytes(reversed(range(256))) * 16)
    ds.IconImageSequence = pydicom.Sequence([icon])
    out = io.BytesIO()
    if transfer_syntax is not None:
        ds.file_meta.TransferSyntaxUID = transfer_syntax
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


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


def with_private(data: bytes, *, group: int, creator: str, offset: int, vr: str, value: object,
                 implicit: bool = False) -> bytes:
    """`data` with a private attribute: block reserved by `creator` in `group`, element `offset`
    in it (so tag (group, 0x10xx) for the first block). `implicit`: saved as Implicit VR Little
    Endian, where the attribute's VR is not in the file."""
    ds = pydicom.dcmread(io.BytesIO(data))
    ds.private_block(group, creator, create=True).add_new(offset, vr, value)
    if implicit:
        ds.file_meta.TransferSyntaxUID = pydicom.uid.ImplicitVRLittleEndian
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()
