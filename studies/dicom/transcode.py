"""Transcoding stored files to Explicit VR Little Endian, the DICOMweb default syntax.

The whole dataset is decoded in memory, so files above DICOM_MAX_TRANSCODE_BYTES are
refused up front (406), as Microsoft's server does at 100 MB.
"""

from __future__ import annotations

import io
from typing import IO

import numpy as np
import pydicom
from pydicom.pixels import get_decoder
from pydicom.uid import UID, ExplicitVRLittleEndian

from dicomsvc.errors import NotAcceptable, TranscodingNotSupported
from studies.dicom.transfer_syntaxes import EXPLICIT_VR_BIG_ENDIAN, UNCOMPRESSED
from studies.dicom.transfer_syntaxes import EXPLICIT_VR_LITTLE_ENDIAN as ELE


def transcode_check(*, transfer_syntax_uid: str, file_size: int, has_pixels: bool, limit: int) -> None:
    """406 before any byte is sent when a stored file cannot become Explicit VR LE."""
    if transfer_syntax_uid == ELE:
        return
    if file_size > limit:
        raise NotAcceptable(
            f"Requested DICOM instance size is above the supported limit of {limit}. The entire instance can be "
            "retrieved with the original transfer syntax by specifying 'transfer-syntax=*' in the Accept header."
        )
    if transfer_syntax_uid in UNCOMPRESSED or not has_pixels:
        return
    try:
        available = get_decoder(UID(transfer_syntax_uid)).is_available
    except (NotImplementedError, ValueError, KeyError):
        available = False
    if not available:
        raise TranscodingNotSupported()


def transcode_to_ele(fileobj: IO[bytes]) -> bytes:
    """The file re-encoded in Explicit VR Little Endian with decoded pixel data.

    Raises TranscodingNotSupported for anything pydicom cannot decode or re-encode.
    """
    try:
        return _transcode(fileobj)
    except TranscodingNotSupported:
        raise
    except Exception as exc:  # decoders and the writer raise many types on odd files
        raise TranscodingNotSupported() from exc


def _transcode(fileobj: IO[bytes]) -> bytes:
    fileobj.seek(0)
    ds = pydicom.dcmread(fileobj)
    source = str(ds.file_meta.TransferSyntaxUID)
    if "PixelData" in ds and UID(source).is_compressed:
        ds.decompress(generate_instance_uid=False)
    elif "PixelData" in ds and source == EXPLICIT_VR_BIG_ENDIAN and int(ds.BitsAllocated) > 8:
        array = ds.pixel_array
        ds.PixelData = np.ascontiguousarray(array.astype(array.dtype.newbyteorder("<"))).tobytes()
        ds["PixelData"].VR = "OW"
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    out = io.BytesIO()
    # Without enforce_file_format the preamble and file meta are written only when present;
    # force_encoding lets pydicom turn a big endian dataset little endian.
    ds.preamble = ds.preamble or b"\x00" * 128
    pydicom.dcmwrite(out, ds, implicit_vr=False, little_endian=True, force_encoding=True)
    return out.getvalue()
