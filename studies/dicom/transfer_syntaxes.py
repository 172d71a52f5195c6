"""Transfer syntax UIDs, and the families this server tells apart, named once from `pydicom.uid`.

`tests/test_transfer_syntaxes.py` pins each family against pydicom's own UID properties.
"""

from __future__ import annotations

from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPIPHTJ2KReferencedDeflate,
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
