"""QIDO-RS: search, read result values, and a small archive of three patients' studies."""

from __future__ import annotations

import json
from typing import Any

from pydicom.datadict import tag_for_keyword
from pydicom.uid import generate_uid

from tests.helpers.dicom import dicom_bytes
from tests.helpers.http import DICOM_JSON, base, store


def search(client: Any, path: str, params: Any = None, *, version: str = "v2", partition: str | None = None,
           accept: str | None = DICOM_JSON) -> Any:
    headers = {"HTTP_ACCEPT": accept} if accept is not None else {}
    return client.get(f"{base(partition, version)}/{path}", params or {}, **headers)


def results(response: Any) -> list[dict[str, Any]]:
    assert response.status_code == 200, (response.status_code, response.content)
    assert response["Content-Type"] == DICOM_JSON
    return json.loads(response.content)


def key(keyword: str) -> str:
    return f"{tag_for_keyword(keyword):08X}"


def value(dataset: dict[str, Any], keyword: str) -> Any:
    """The first value of an attribute in a DICOM JSON dataset (PN: its Alphabetic group)."""
    element = dataset[key(keyword)]
    first = element["Value"][0]
    if element["vr"] == "PN":
        return first.get("Alphabetic")
    return first


def column(response: Any, keyword: str) -> list[Any]:
    """That attribute's first value in every result, in result order."""
    return [value(dataset, keyword) for dataset in results(response)]


class Study:
    """UIDs of one stored study: `series[i]` is a series UID, `sops[series_uid]` its SOP UIDs."""

    def __init__(self, uid: str) -> None:
        self.uid = uid
        self.series: list[str] = []
        self.sops: dict[str, list[str]] = {}

    def add(self, *, series: int, partition: str | None = None, name: str = "CT_small.dcm", **attrs: object) -> str:
        """Store one instance in the study's `series`-th series (a new one past the end)."""
        series_uid = self.series[series] if series < len(self.series) else None
        (instance,) = store(
            dicom_bytes(name, StudyInstanceUID=self.uid, SeriesInstanceUID=series_uid, **attrs), partition=partition
        )
        series_uid = instance.series_instance_uid
        if series_uid not in self.sops:
            self.series.append(series_uid)
            self.sops[series_uid] = []
        self.sops[series_uid].append(instance.sop_instance_uid)
        return instance.sop_instance_uid

    @property
    def all_sops(self) -> list[str]:
        return [sop for sops in self.sops.values() for sop in sops]


class Archive:
    """Three patients' studies, stored through STOW, as every matching test sees them.

    alice: Doe^John, two series (CT with two instances, MR with one), 2020.
    bob: Müller^Jürgen, one MR series (MR_small.dcm, another SOP class), 2021.
    charlie: Johnson^Dorothy, one US series, 2022.
    """

    def __init__(self, partition: str | None = None) -> None:
        alice = dict(
            PatientName="Doe^John", PatientID="PID-ALICE", AccessionNumber="ACC-100", StudyDescription="Chest CT",
            StudyDate="20200115", PatientBirthDate="19700101", ReferringPhysicianName="House^Gregory",
        )
        self.alice = Study(generate_uid())
        self.alice.add(series=0, partition=partition, Modality="CT", ManufacturerModelName="Revolution EVO",
                       PerformedProcedureStepStartDate="20200115", **alice)
        self.alice.add(series=0, partition=partition, Modality="CT", ManufacturerModelName="Revolution EVO",
                       PerformedProcedureStepStartDate="20200115", **alice)
        self.alice.add(series=1, partition=partition, Modality="MR", ManufacturerModelName="Signa HDxt",
                       PerformedProcedureStepStartDate="20200116", **alice)
        self.bob = Study(generate_uid())
        self.bob.add(
            series=0, partition=partition, name="MR_small.dcm", Modality="MR", ManufacturerModelName="Signa",
            PerformedProcedureStepStartDate="20210620", PatientName="Müller^Jürgen", PatientID="PID-BOB",
            AccessionNumber="ACC-200", StudyDescription="Brain MR", StudyDate="20210620",
            PatientBirthDate="19801224", ReferringPhysicianName="Wilson^James", SpecificCharacterSet="ISO_IR 100",
        )
        self.charlie = Study(generate_uid())
        self.charlie.add(
            series=0, partition=partition, Modality="US", ManufacturerModelName="Voluson",
            PerformedProcedureStepStartDate="20220301", PatientName="Johnson^Dorothy", PatientID="pid-charlie",
            AccessionNumber="ACC-300", StudyDescription="Abdomen US", StudyDate="20220301",
            PatientBirthDate="19551231", ReferringPhysicianName="Doe^Jane",
        )
        self.by_uid = {study.uid: name for name, study in
                       (("alice", self.alice), ("bob", self.bob), ("charlie", self.charlie))}
