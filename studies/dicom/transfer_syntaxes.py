"""Transfer syntax UIDs, and the families this server tells apart, named once from `pydicom.uid`.

`tests/test_transfer_syntaxes.py` pins each family against pydicom's own UID properties.
"""

from __future__ import annotations

from pydicom.uid import (
    HTJ2K,
    JPEG2000,
    JPEG2000MC,
    UID,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    HTJ2KLossless,
    HTJ2KLosslessRPCL,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEG2000MCLossless,
    JPEGBaseline8Bit,
    JPEGExtended12Bit,
    JPEGLossless,
    JPEGLosslessSV1,
    JPEGLSLossless,
    JPEGLSNearLossless,
    JPIPHTJ2KReferencedDeflate,
    RLELossless,
    UncompressedTransferSyntaxes,
)

EXPLICIT_VR_LITTLE_ENDIAN = str(ExplicitVRLittleEndian)  # DICOMweb's default, what retrieves transcode to
IMPLICIT_VR_LITTLE_ENDIAN = str(ImplicitVRLittleEndian)
EXPLICIT_VR_BIG_ENDIAN = str(ExplicitVRBigEndian)
# JPIP Referenced Deflate, which pydicom names no constant for.
JPIP_REFERENCED_DEFLATE = "1.2.840.10008.1.2.4.95"

# The dataset after the file meta is deflated (PS3.5 A.5, A.7): its bytes are no element stream,
# so positions in it mean nothing and it is read and rewritten through pydicom. pydicom's
# `UID.is_deflated` knows only the first; the JPIP ones deflate their dataset the same way.
DEFLATED = frozenset({str(DeflatedExplicitVRLittleEndian), JPIP_REFERENCED_DEFLATE, str(JPIPHTJ2KReferencedDeflate)})
# Pixel data is not encapsulated: pydicom reads it without a decoder.
UNCOMPRESSED = frozenset(str(uid) for uid in UncompressedTransferSyntaxes)
# Native pixel data, little endian, at known positions in the stored file: a frame is served
# as stored, whatever the target syntax, since its bytes are those of Explicit VR Little Endian.
NATIVE_LITTLE_ENDIAN = frozenset({EXPLICIT_VR_LITTLE_ENDIAN, IMPLICIT_VR_LITTLE_ENDIAN})

# The media types a frame in a compressed syntax is served as, and the syntaxes each carries, its
# default first (PS3.18 Table 8.7.3-5): a frame goes out as stored, never re-encoded.
FRAME_MEDIA_TYPES: dict[str, tuple[str, ...]] = {
    "image/jpeg": tuple(str(uid) for uid in (JPEGBaseline8Bit, JPEGExtended12Bit, JPEGLosslessSV1, JPEGLossless)),
    "image/jls": (str(JPEGLSLossless), str(JPEGLSNearLossless)),
    "image/jp2": (str(JPEG2000Lossless), str(JPEG2000)),
    "image/jpx": (str(JPEG2000MCLossless), str(JPEG2000MC)),
    "image/jphc": (str(HTJ2KLossless), str(HTJ2KLosslessRPCL), str(HTJ2K)),
    "image/x-dicom-rle": (str(RLELossless),),
}


def is_transfer_syntax(uid: str) -> bool:
    """Whether `uid` names a transfer syntax pydicom knows."""
    return UID(uid).is_transfer_syntax
