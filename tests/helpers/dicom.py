"""DICOM file factories: pydicom test files with fresh UIDs, and the UIDs back out of bytes."""

from __future__ import annotations

import io

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
