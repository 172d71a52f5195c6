"""What QIDO-RS can match and return, per resource and level, as in Microsoft's server (docs/search.md)."""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

from pydicom.datadict import tag_for_keyword


class Level(enum.Enum):
    STUDY = "study"
    SERIES = "series"
    INSTANCE = "instance"


class Kind(enum.Enum):
    """How a searchable attribute's value is matched."""

    UID = "uid"  # exact, or any of a backslash/comma separated list
    STRING = "string"  # case-insensitive exact, or * and ? wildcards
    PERSON_NAME = "pn"  # case- and accent-insensitive; word-prefix under fuzzymatching
    DATE = "date"  # a date or an inclusive range with optional open ends
    MODALITIES = "modalities"  # any visible series of the study has a matching Modality
    # Only extended query tags (docs/extended-query-tags.md):
    DATETIME = "datetime"  # a DT value or an inclusive range
    TIME = "time"  # a TM value or an inclusive range
    NUMBER = "number"  # numeric equality


@dataclass(frozen=True)
class Searchable:
    keyword: str
    tag: int
    level: Level
    kind: Kind
    # Column on the level's model (Study, Series or Instance); empty for an extended query tag.
    column: str
    # An extended query tag: its row's key and VR (its values are in the value table).
    tag_key: int | None = None
    vr: str = ""


STUDY_INSTANCE_UID = 0x0020000D
SERIES_INSTANCE_UID = 0x0020000E
SOP_INSTANCE_UID = 0x00080018
MODALITIES_IN_STUDY = 0x00080061
NUMBER_OF_STUDY_RELATED_SERIES = 0x00201206
NUMBER_OF_STUDY_RELATED_INSTANCES = 0x00201208
NUMBER_OF_SERIES_RELATED_INSTANCES = 0x00201209

_SEARCHABLE = [
    Searchable("StudyInstanceUID", STUDY_INSTANCE_UID, Level.STUDY, Kind.UID, "study_instance_uid"),
    Searchable("StudyDate", 0x00080020, Level.STUDY, Kind.DATE, "study_date"),
    Searchable("StudyDescription", 0x00081030, Level.STUDY, Kind.STRING, "study_description"),
    Searchable("AccessionNumber", 0x00080050, Level.STUDY, Kind.STRING, "accession_number"),
    Searchable("PatientID", 0x00100020, Level.STUDY, Kind.STRING, "patient_id"),
    Searchable("PatientName", 0x00100010, Level.STUDY, Kind.PERSON_NAME, "patient_name_search"),
    Searchable(
        "ReferringPhysicianName", 0x00080090, Level.STUDY, Kind.PERSON_NAME, "referring_physician_name_search"
    ),
    Searchable("PatientBirthDate", 0x00100030, Level.STUDY, Kind.DATE, "patient_birth_date"),
    Searchable("ModalitiesInStudy", MODALITIES_IN_STUDY, Level.STUDY, Kind.MODALITIES, "modality"),
    Searchable("SeriesInstanceUID", SERIES_INSTANCE_UID, Level.SERIES, Kind.UID, "series_instance_uid"),
    Searchable("Modality", 0x00080060, Level.SERIES, Kind.STRING, "modality"),
    Searchable(
        "PerformedProcedureStepStartDate",
        0x00400244,
        Level.SERIES,
        Kind.DATE,
        "performed_procedure_step_start_date",
    ),
    Searchable("ManufacturerModelName", 0x00081090, Level.SERIES, Kind.STRING, "manufacturer_model_name"),
    Searchable("SOPInstanceUID", SOP_INSTANCE_UID, Level.INSTANCE, Kind.UID, "sop_instance_uid"),
    Searchable("SOPClassUID", 0x00080016, Level.INSTANCE, Kind.UID, "sop_class_uid"),
]
SEARCHABLE: dict[int, Searchable] = {attribute.tag: attribute for attribute in _SEARCHABLE}


class Resource(enum.Enum):
    """The six QIDO-RS resources: (result level, levels whose attributes it filters and returns)."""

    STUDIES = (Level.STUDY, (Level.STUDY,))
    SERIES = (Level.SERIES, (Level.STUDY, Level.SERIES))
    INSTANCES = (Level.INSTANCE, (Level.STUDY, Level.SERIES, Level.INSTANCE))
    STUDY_SERIES = (Level.SERIES, (Level.SERIES,))
    STUDY_INSTANCES = (Level.INSTANCE, (Level.SERIES, Level.INSTANCE))
    STUDY_SERIES_INSTANCES = (Level.INSTANCE, (Level.INSTANCE,))

    _value_: tuple[Level, tuple[Level, ...]]

    @property
    def level(self) -> Level:
        return self._value_[0]

    @property
    def levels(self) -> tuple[Level, ...]:
        return self._value_[1]


def _tags(*keywords: str) -> frozenset[int]:
    tags = set()
    for keyword in keywords:
        tag = tag_for_keyword(keyword)
        assert tag is not None, keyword
        tags.add(tag)
    return frozenset(tags)


# Default return attributes (docs/search.md). v1 also serves 1.0-prerelease.
DEFAULT_V2 = {
    Level.STUDY: _tags(
        "StudyInstanceUID", "StudyDate", "StudyDescription", "AccessionNumber", "ReferringPhysicianName",
        "PatientName", "PatientID", "PatientBirthDate",
    ),
    Level.SERIES: _tags("SeriesInstanceUID", "Modality", "PerformedProcedureStepStartDate", "ManufacturerModelName"),
    Level.INSTANCE: _tags("SOPInstanceUID"),
}
DEFAULT_V1 = {
    Level.STUDY: _tags(
        "SpecificCharacterSet", "StudyDate", "StudyTime", "AccessionNumber", "InstanceAvailability",
        "ReferringPhysicianName", "TimezoneOffsetFromUTC", "PatientName", "PatientID", "PatientBirthDate",
        "PatientSex", "StudyID", "StudyInstanceUID",
    ),
    Level.SERIES: _tags(
        "SpecificCharacterSet", "Modality", "TimezoneOffsetFromUTC", "SeriesDescription", "SeriesInstanceUID",
        "PerformedProcedureStepStartDate", "PerformedProcedureStepStartTime", "RequestAttributesSequence",
    ),
    Level.INSTANCE: _tags(
        "SpecificCharacterSet", "SOPClassUID", "SOPInstanceUID", "InstanceAvailability", "TimezoneOffsetFromUTC",
        "InstanceNumber", "Rows", "Columns", "BitsAllocated", "NumberOfFrames",
    ),
}
# Attributes computed from the index rather than read from an instance's metadata.
COMPUTED = {
    Level.STUDY: frozenset(
        {MODALITIES_IN_STUDY, NUMBER_OF_STUDY_RELATED_SERIES, NUMBER_OF_STUDY_RELATED_INSTANCES}
    ),
    Level.SERIES: frozenset({NUMBER_OF_SERIES_RELATED_INSTANCES}),
    Level.INSTANCE: frozenset(),
}
# includefield=all, in both versions: v1 defaults, Microsoft's additions, and (our choice) the
# computed attributes, so "all" really is the largest set.
ALL = {
    Level.STUDY: DEFAULT_V1[Level.STUDY]
    | _tags(
        "StudyDescription", "AnatomicRegionsInStudyCodeSequence", "ProcedureCodeSequence",
        "NameOfPhysiciansReadingStudy", "AdmittingDiagnosesDescription", "ReferencedStudySequence", "PatientAge",
        "PatientSize", "PatientWeight", "Occupation", "AdditionalPatientHistory",
    )
    | COMPUTED[Level.STUDY],
    Level.SERIES: DEFAULT_V1[Level.SERIES]
    | _tags("SeriesNumber", "Laterality", "SeriesDate", "SeriesTime")
    | COMPUTED[Level.SERIES],
    Level.INSTANCE: DEFAULT_V1[Level.INSTANCE],
}
ALL_COMPUTED = COMPUTED[Level.STUDY] | COMPUTED[Level.SERIES]

_HEX_TAG = re.compile(r"[0-9A-Fa-f]{8}")


def attribute_tag(identifier: str) -> int | None:
    """The tag named by an 8-hex-digit tag or a (case-sensitive) keyword, or None."""
    if _HEX_TAG.fullmatch(identifier):
        return int(identifier, 16)
    tag = tag_for_keyword(identifier)
    return int(tag) if tag is not None else None


# What a result can show without an includefield outside these sets: every level's `all` set
# and every searchable attribute. Each instance keeps these attributes of its metadata apart
# (`Instance.search_metadata`), a few hundred bytes that a QIDO page decodes instead of the
# whole header.
PROJECTION_TAGS = (
    frozenset().union(*ALL.values(), *DEFAULT_V2.values(), (attribute.tag for attribute in _SEARCHABLE))
    - ALL_COMPUTED
)
