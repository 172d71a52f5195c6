"""The change dataset of a bulk update: which attributes may change, and checking new values.

Only the non-sequence attributes of the Patient Identification and Patient Demographic
modules and three General Study attributes may change (docs/bulk-update.md). Every refused
attribute is reported with its tag, as the FailedAttributesSequence of a 400 response.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from pydicom.datadict import dictionary_keyword, dictionary_VM, dictionary_VR
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset

from studies.dicom.dicomjson import tag_label
from studies.dicom.vr import vr_validate

# Patient Identification module
PATIENT_IDENTIFICATION = (
    0x00100010,  # PatientName
    0x00100020,  # PatientID
    0x00101000,  # OtherPatientIDs
    0x00100022,  # TypeOfPatientID
    0x00101001,  # OtherPatientNames
    0x00101005,  # PatientBirthName
    0x00101060,  # PatientMotherBirthName
    0x00101090,  # MedicalRecordLocator
    0x00100021,  # IssuerOfPatientID
)
# Patient Demographic module
PATIENT_DEMOGRAPHIC = (
    0x00101010,  # PatientAge
    0x00102180,  # Occupation
    0x00403001,  # ConfidentialityConstraintOnPatientDataDescription
    0x00100030,  # PatientBirthDate
    0x00100032,  # PatientBirthTime
    0x00100040,  # PatientSex
    0x00100200,  # QualityControlSubject
    0x00101020,  # PatientSize
    0x00101030,  # PatientWeight
    0x00101040,  # PatientAddress
    0x00101080,  # MilitaryRank
    0x00101081,  # BranchOfService
    0x00102150,  # CountryOfResidence
    0x00102152,  # RegionOfResidence
    0x00102154,  # PatientTelephoneNumbers
    0x00102160,  # EthnicGroup
    0x001021F0,  # PatientReligiousPreference
    0x00104000,  # PatientComments
    0x00102297,  # ResponsiblePerson
    0x00102298,  # ResponsiblePersonRole
    0x00102299,  # ResponsibleOrganization
    0x00102201,  # PatientSpeciesDescription
    0x00102292,  # PatientBreedDescription
    0x00102295,  # BreedRegistrationNumber
)
# General Study module
GENERAL_STUDY = (
    0x00080090,  # ReferringPhysicianName
    0x00080050,  # AccessionNumber
    0x00081030,  # StudyDescription
)
UPDATABLE_TAGS = frozenset(PATIENT_IDENTIFICATION + PATIENT_DEMOGRAPHIC + GENERAL_STUDY)

NOT_SUPPORTED = "Updating the tag is not supported"
NULL_NOT_SUPPORTED = "Updating the tag to a null or empty value is not supported"
_TAG_KEY = re.compile(r"[0-9A-Fa-f]{8}")
_PN_GROUPS = ("Alphabetic", "Ideographic", "Phonetic")
_LT_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1a\x1c-\x1f\x7f]")  # LT allows TAB, LF, FF, CR, ESC


class ChangeDatasetMalformed(Exception):
    """The change dataset is not a DICOM JSON object keyed by tags."""


class ChangeDatasetRefused(Exception):
    """Attributes that cannot be changed; `comments` are ErrorComment texts naming each tag."""

    def __init__(self, comments: list[str]) -> None:
        super().__init__("; ".join(comments))
        self.comments = comments


@dataclass(frozen=True)
class ChangeSet:
    """A validated change: elements in tag order and their DICOM JSON."""

    elements: list[DataElement]

    @cached_property
    def json(self) -> dict[str, Any]:
        """The change as DICOM JSON (computed once; read-only to callers)."""
        return {f"{int(e.tag):08X}": e.to_json_dict(None, 2**62) for e in self.elements}

    def first_values(self) -> dict[str, str]:
        """Keyword -> first value as text, as STOW indexes attributes."""
        out: dict[str, str] = {}
        for element in self.elements:
            values = list(element.value) if element.VM > 1 else [element.value]
            out[dictionary_keyword(element.tag)] = str(values[0]) if values else ""
        return out


def _comment(tag: int, reason: str) -> str:
    return f"DICOM100: {tag_label(tag)} - {reason}"


def _shape_error(vr: str, values: list[Any]) -> str | None:
    """Why `values` is not DICOM JSON (PS3.18 F.2) for a string-valued VR, or None."""
    for value in values:
        if value is None:
            continue
        if vr == "PN":
            if not isinstance(value, dict) or not set(value) <= set(_PN_GROUPS):
                return "a PN value must be an object with Alphabetic, Ideographic or Phonetic"
            if not all(isinstance(v, str) or v is None for v in value.values()):
                return "PN name groups must be strings"
        elif vr in ("DS", "IS"):
            if isinstance(value, bool) or not isinstance(value, (int, float, str)):
                return f"a {vr} value must be a number or a string"
        elif not isinstance(value, str):
            return f"a {vr} value must be a string"
    return None


def _value_texts(element: DataElement) -> list[str]:
    if element.VM == 0:
        return []
    values = list(element.value) if element.VM > 1 else [element.value]
    return ["" if v is None else str(v) for v in values]


def _value_error(vr: str, text: str) -> str | None:
    if vr == "LT":
        if len(text) > 10240:
            return "Value length exceeds maximum length of 10240."
        return "Value contains invalid character." if _LT_CONTROL.search(text) else None
    return vr_validate(vr, text)


class _AttributeRefused(Exception):
    """Why one attribute of the change dataset cannot apply (becomes a DICOM100 comment)."""


def _element(tag: int, body: Any) -> DataElement:
    """The element for one attribute of the change dataset; _AttributeRefused with the reason otherwise."""
    if tag not in UPDATABLE_TAGS:
        raise _AttributeRefused(NOT_SUPPORTED)
    if not isinstance(body, dict):
        raise _AttributeRefused("Invalid DICOM JSON: an attribute must be an object with 'vr' and 'Value'.")
    expected = dictionary_VR(tag)
    vr = body.get("vr")
    if vr is None:
        raise _AttributeRefused("Invalid DICOM JSON: the attribute has no 'vr'.")
    if vr != expected:
        raise _AttributeRefused(
            f"The VR code '{vr}' is incorrectly specified. The expected VR code for it is '{expected}'."
        )
    unexpected = set(body) - {"vr", "Value"}
    if unexpected:
        raise _AttributeRefused(f"Invalid DICOM JSON: unexpected member '{sorted(unexpected)[0]}'.")
    values = body.get("Value")
    if values is None or values == []:
        raise _AttributeRefused(NULL_NOT_SUPPORTED)
    if not isinstance(values, list):
        raise _AttributeRefused("Invalid DICOM JSON: 'Value' must be an array.")
    shape = _shape_error(vr, values)
    if shape:
        raise _AttributeRefused(f"Invalid DICOM JSON: {shape}.")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the checks below report what pydicom would warn about
            element = DataElement.from_json(Dataset, f"{tag:08X}", vr, values, "Value")
    except Exception as exc:  # pydicom raises several types for values it cannot convert
        raise _AttributeRefused(f"Invalid DICOM JSON: {exc}") from exc
    texts = _value_texts(element)
    if not any(text.strip("\x00 ") for text in texts):
        raise _AttributeRefused(NULL_NOT_SUPPORTED)
    keyword = dictionary_keyword(tag)
    if dictionary_VM(tag) == "1" and len(texts) > 1:
        raise _AttributeRefused(f"Dicom element '{keyword}' allows one value, {len(texts)} were given.")
    for text in texts:
        reason = _value_error(vr, text)
        if reason:
            raise _AttributeRefused(f"Dicom element '{keyword}' failed validation for VR '{vr}': {reason}")
    return element


def changeset_parse(data: Any) -> ChangeSet:
    """Validate a changeDataset; ChangeDatasetMalformed or ChangeDatasetRefused when it cannot apply."""
    if not isinstance(data, dict) or not data:
        raise ChangeDatasetMalformed("The required field 'ChangeDataset' is missing or empty.")
    for key in data:
        if not isinstance(key, str) or not _TAG_KEY.fullmatch(key):
            raise ChangeDatasetMalformed(
                f"The field 'changeDataset' in request body is invalid: '{key}' is not a DICOM tag "
                "(8 hexadecimal digits)."
            )
    elements: list[DataElement] = []
    comments: list[str] = []
    seen: set[int] = set()
    for key in sorted(data, key=lambda k: int(k, 16)):
        tag = int(key, 16)
        if tag in seen:
            comments.append(_comment(tag, "The attribute is specified more than once."))
            continue
        seen.add(tag)
        try:
            elements.append(_element(tag, data[key]))
        except _AttributeRefused as refused:
            comments.append(_comment(tag, str(refused)))
    if comments:
        raise ChangeDatasetRefused(comments)
    return ChangeSet(elements=elements)
