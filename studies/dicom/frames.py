"""Frame extraction: byte ranges from the frame index, or decoding as a fallback."""

from __future__ import annotations

import json
from typing import IO

import pydicom
from pydicom.encaps import generate_frames
from pydicom.pixels import pixel_array
from pydicom.uid import UID

from dicomsvc.errors import NotAcceptable, TranscodingNotSupported
from studies.dicom.transfer_syntaxes import EXPLICIT_VR_LITTLE_ENDIAN as ELE
from studies.dicom.transfer_syntaxes import NATIVE_LITTLE_ENDIAN


def frames_from_index(fileobj: IO[bytes], frame_index_text: str, numbers: list[int]) -> list[bytes]:
    index = json.loads(frame_index_text)
    out = []
    for number in numbers:
        data = bytearray()
        for offset, length in index[number - 1]:
            fileobj.seek(offset)
            data += fileobj.read(length)
        out.append(bytes(data))
    return out


def frames_read(
    fileobj: IO[bytes],
    *,
    transfer_syntax_uid: str,
    frame_index_text: str,
    numbers: list[int],
    target: str,
    file_size: int,
    limit: int,
) -> tuple[list[bytes], str]:
    """The requested frames and the transfer syntax they are in."""
    original = target in ("*", transfer_syntax_uid) or transfer_syntax_uid == ELE
    native = transfer_syntax_uid in NATIVE_LITTLE_ENDIAN
    if frame_index_text and (original or native):
        return frames_from_index(fileobj, frame_index_text, numbers), (ELE if native else transfer_syntax_uid)
    if file_size > limit:
        raise NotAcceptable(
            f"Requested DICOM instance size is above the supported limit of {limit}. The entire instance can be "
            "retrieved with the original transfer syntax by specifying 'transfer-syntax=*' in the Accept header."
        )
    fileobj.seek(0)
    ds = pydicom.dcmread(fileobj)
    frame_count = int(ds.get("NumberOfFrames", 1) or 1)
    if original and UID(transfer_syntax_uid).is_encapsulated:
        all_frames = list(generate_frames(ds.PixelData, number_of_frames=frame_count))
        return [all_frames[n - 1] for n in numbers], transfer_syntax_uid
    try:
        out = []
        for number in numbers:
            array = pixel_array(ds, index=number - 1) if frame_count > 1 else ds.pixel_array
            out.append(array.astype(array.dtype.newbyteorder("<")).tobytes())
    except Exception as exc:
        raise TranscodingNotSupported() from exc
    return out, ELE
