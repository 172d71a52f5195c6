"""The transfer syntax families agree with pydicom's own description of each UID."""

from __future__ import annotations

from pydicom.uid import UID, AllTransferSyntaxes

from studies.dicom.transfer_syntaxes import (
    DEFLATED,
    EXPLICIT_VR_BIG_ENDIAN,
    EXPLICIT_VR_LITTLE_ENDIAN,
    IMPLICIT_VR_LITTLE_ENDIAN,
    NATIVE_LITTLE_ENDIAN,
    UNCOMPRESSED,
)


def test_single_syntaxes():
    assert UID(EXPLICIT_VR_LITTLE_ENDIAN).is_little_endian and not UID(EXPLICIT_VR_LITTLE_ENDIAN).is_implicit_VR
    assert UID(IMPLICIT_VR_LITTLE_ENDIAN).is_little_endian and UID(IMPLICIT_VR_LITTLE_ENDIAN).is_implicit_VR
    assert not UID(EXPLICIT_VR_BIG_ENDIAN).is_little_endian


def test_deflated_holds_every_syntax_pydicom_deflates_and_only_deflate_syntaxes():
    assert {str(uid) for uid in AllTransferSyntaxes if uid.is_deflated} <= DEFLATED
    for uid in DEFLATED:
        assert UID(uid).is_transfer_syntax
        assert "Deflate" in UID(uid).name


def test_uncompressed_is_what_pydicom_calls_not_encapsulated():
    assert UNCOMPRESSED == {str(uid) for uid in AllTransferSyntaxes if not uid.is_encapsulated}


def test_native_little_endian_is_uncompressed_little_endian_and_not_deflated():
    expected = {uid for uid in UNCOMPRESSED if UID(uid).is_little_endian and not UID(uid).is_deflated}
    assert NATIVE_LITTLE_ENDIAN == expected


def test_frame_media_types_name_encapsulated_syntaxes_each_once():
    from studies.dicom.transfer_syntaxes import FRAME_MEDIA_TYPES

    syntaxes = [uid for uids in FRAME_MEDIA_TYPES.values() for uid in uids]
    assert len(syntaxes) == len(set(syntaxes))
    assert all(UID(uid).is_transfer_syntax and UID(uid).is_encapsulated for uid in syntaxes)
    assert FRAME_MEDIA_TYPES["image/jpeg"][0] == "1.2.840.10008.1.2.4.50"  # PS3.18's default for the type
    assert FRAME_MEDIA_TYPES["image/jp2"][0] == "1.2.840.10008.1.2.4.90"
