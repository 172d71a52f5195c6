"""Load a QIDO benchmark archive into PostgreSQL: 100,000 studies, 1,000,000 instances.

    createdb -h 127.0.0.1 -U postgres dicomsvc_bench3
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/dicomsvc_bench3 \\
        .venv/bin/python bench/qido_load.py --reset

Rows go in with COPY, but every indexed value is computed by the store path's own code:
study and series columns by `studies.dicom.reader.indexed_columns` (what
`parsed_indexed_columns` returns for a stored file), person-name words by
`studies.services.person_names.person_name_word_rows`, instance metadata by
`studies.dicom.dicomjson.dataset_json_dict` from a real CT header. No blobs are written:
QIDO never reads them. The spread: patients with one to many studies, study dates over
15 years, a realistic modality mix with per-modality series counts, instance counts per
series drawn from a long-tailed distribution, and 100 series of exactly 500 instances.

The metadata also carries three attributes for extended query tags (issue #15; tags and their
reindex are added by bench/eqt_bench.py): BodyPartExamined (CS, per series),
ProtocolName (LO, per instance: the series' protocol and a variant) and AcquisitionDate
(DA, the study date or the day after).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dicomsvc.settings")

import django  # noqa: E402

django.setup()

import numpy as np  # noqa: E402
import pydicom  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from pydicom.data import get_testdata_file  # noqa: E402

from partitions.models import DEFAULT_PARTITION_NAME, Partition  # noqa: E402
from studies.dicom.dicomjson import ElementErrors, dataset_json_dict, json_dumps  # noqa: E402
from studies.dicom.reader import indexed_columns  # noqa: E402
from studies.models import Instance, PersonNameWord, Series, Study  # noqa: E402
from studies.search.results import projection_keys, search_projection  # noqa: E402
from studies.services.person_names import SEARCH_COLUMNS, person_name_word_rows  # noqa: E402

UID_ROOT = "1.2.826.0.1.3680043.10.1234"
CT_IMAGE = "1.2.840.10008.5.1.4.1.1.2"
ELE = "1.2.840.10008.1.2.1"
# (modality, share of studies, series per study range, SOP class, model names)
MODALITIES = [
    ("CT", 0.26, (2, 5), CT_IMAGE, ["Revolution EVO", "SOMATOM Force", "Aquilion ONE"]),
    ("MR", 0.18, (3, 8), "1.2.840.10008.5.1.4.1.1.4", ["Signa HDxt", "MAGNETOM Skyra", "Ingenia"]),
    ("CR", 0.14, (1, 2), "1.2.840.10008.5.1.4.1.1.1", ["FCR Capsula", "DirectView CR"]),
    ("DX", 0.14, (1, 3), "1.2.840.10008.5.1.4.1.1.1.1", ["DigitalDiagnost", "Ysio Max"]),
    ("US", 0.12, (1, 3), "1.2.840.10008.5.1.4.1.1.6.1", ["LOGIQ E10", "Voluson E8"]),
    ("MG", 0.07, (2, 4), "1.2.840.10008.5.1.4.1.1.1.2", ["Selenia Dimensions", "Senographe Pristina"]),
    ("PT", 0.04, (2, 3), "1.2.840.10008.5.1.4.1.1.128", ["Biograph Vision", "Discovery MI"]),
    ("XA", 0.03, (1, 4), "1.2.840.10008.5.1.4.1.1.12.1", ["Allura Xper", "Artis zee"]),
    ("NM", 0.02, (1, 2), "1.2.840.10008.5.1.4.1.1.20", ["Symbia Intevo"]),
]
FAMILY_STEMS = [
    "Smith", "Johns", "Willi", "Brown", "Jones", "Garc", "Mill", "Davi", "Rodr", "Marti", "Hern", "Lope",
    "Gonz", "Wils", "Ande", "Thom", "Tayl", "Moor", "Jack", "Whit", "Harr", "Sanch", "Clar", "Ramir", "Lewi",
    "Robin", "Walk", "Youn", "Alle", "King", "Wrig", "Scot", "Torr", "Nguy", "Hill", "Flor", "Gree", "Adam",
    "Nels", "Bake", "Hall", "Rive", "Campb", "Mitch", "Cart", "Robe", "Müll", "Schm", "Schn", "Fisch", "Weber",
    "Meyer", "Wagn", "Beck", "Schulz", "Hoff", "Dubo", "Lefè", "Moreau", "Giraud", "Rossi", "Russo", "Ferr",
    "Esposi", "Bianch", "Kowal", "Nowak", "Wiśn", "Ivan", "Petr", "Smirn", "Kuzn", "Popo", "Sato", "Suzu",
    "Takah", "Tanak", "Watan", "Yamam", "Kim", "Lee", "Park", "Choi", "Wang", "Li", "Zhang", "Liu", "Chen",
]
FAMILY_ENDINGS = ["", "son", "er", "ez", "ski", "ova", "ini", "ard", "ley", "man", "ing", "ton", "ell", "o", "a"]
GIVEN = [
    "James", "Mary", "John", "Patricia", "Robert", "Jennifer", "Michael", "Linda", "William", "Elizabeth",
    "David", "Barbara", "Richard", "Susan", "Joseph", "Jessica", "Thomas", "Sarah", "Charles", "Karen", "José",
    "María", "Jürgen", "Zoë", "François", "Hélène", "Søren", "Björn", "Ana", "Luis", "Carlos", "Sofia", "Emma",
    "Olivia", "Noah", "Liam", "Lucas", "Mia", "Hiroshi", "Yuki", "Wei", "Min", "Olga", "Dmitri", "Anna", "Ivan",
    "Fatima", "Omar", "Aisha", "Ali", "Priya", "Ravi", "Chloé", "Léa", "Hugo", "Noé", "Élodie", "Inès",
]
PHYSICIANS = [f"{family}^{given}" for family in ("House", "Grey", "Wilson", "Cuddy", "Quinn", "Ross", "Carter",
                                                  "Benton", "Lewis", "Kovač", "Weaver", "Greene")
              for given in ("Gregory", "Meredith", "James", "Lisa", "Michaela", "Doug")]
DESCRIPTIONS = {
    "CT": ["CT CHEST W CONTRAST", "CT HEAD WO CONTRAST", "CT ABDOMEN PELVIS", "CTA CORONARY"],
    "MR": ["MRI BRAIN W WO", "MRI KNEE LEFT", "MRI LUMBAR SPINE", "MR ANGIO HEAD"],
    "CR": ["XR CHEST 2 VIEWS", "XR HAND RIGHT"], "DX": ["XR CHEST PA", "XR KNEE 3 VIEWS"],
    "US": ["US ABDOMEN COMPLETE", "US OB 2ND TRIMESTER"], "MG": ["MAMMO SCREENING BILATERAL"],
    "PT": ["PET CT WHOLE BODY"], "XA": ["CORONARY ANGIOGRAPHY"], "NM": ["NM BONE SCAN WHOLE BODY"],
}


BODY_PARTS = {
    "CT": ["CHEST", "HEAD", "ABDOMEN", "PELVIS", "HEART"], "MR": ["BRAIN", "KNEE", "LSPINE", "HEAD"],
    "CR": ["CHEST", "HAND"], "DX": ["CHEST", "KNEE"], "US": ["ABDOMEN", "UTERUS"], "MG": ["BREAST"],
    "PT": ["WHOLEBODY"], "XA": ["HEART"], "NM": ["WHOLEBODY"],
}


def _base_metadata() -> dict:
    """A real CT header as the store path renders it, minus bulk data and private tags (~3 KB)."""
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"), stop_before_pixels=True)
    ds.remove_private_tags()
    return dataset_json_dict(ds, errors=ElementErrors())


def _element(vr: str, value: object) -> dict:
    if value in (None, ""):
        return {"vr": vr}
    if vr == "PN":
        return {"vr": vr, "Value": [{"Alphabetic": value}]}
    return {"vr": vr, "Value": [value]}


def _da(day: dt.date | None) -> str:
    return day.strftime("%Y%m%d") if day else ""


class Loader:
    def __init__(self, *, studies: int, instances: int, big_series: int, seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.studies = studies
        self.instances = instances
        self.big_series = big_series
        self.partition = Partition.objects.get(partition_name=DEFAULT_PARTITION_NAME)
        self.base = _base_metadata()
        self.now = dt.datetime.now(dt.UTC)

    def patients(self) -> list[tuple[str, str, dt.date]]:
        count = max(1, int(self.studies * 0.4))
        names = []
        for i in range(count):
            stem = FAMILY_STEMS[self.rng.integers(len(FAMILY_STEMS))]
            family = stem + FAMILY_ENDINGS[self.rng.integers(len(FAMILY_ENDINGS))]
            given = GIVEN[self.rng.integers(len(GIVEN))]
            middle = f"^{chr(65 + int(self.rng.integers(26)))}" if self.rng.random() < 0.3 else ""
            born = dt.date(1930, 1, 1) + dt.timedelta(days=int(self.rng.integers(0, 33000)))
            names.append((f"PAT{i:07d}", f"{family}^{given}{middle}", born))
        return names

    def plan(self) -> list[dict]:
        """Studies with their series and instance counts (exactly `self.instances` in all)."""
        patients = self.patients()
        # A few patients have many studies, most have one or two (Zipf-like).
        weights = 1.0 / np.arange(1, len(patients) + 1) ** 0.35
        owners = self.rng.choice(len(patients), size=self.studies, p=weights / weights.sum())
        shares = np.array([m[1] for m in MODALITIES])
        kinds = self.rng.choice(len(MODALITIES), size=self.studies, p=shares / shares.sum())
        start = dt.date(2010, 1, 1)
        studies = []
        for index in range(self.studies):
            modality, _share, (low, high), sop_class, models = MODALITIES[kinds[index]]
            patient_id, name, born = patients[owners[index]]
            series = []
            for number in range(int(self.rng.integers(low, high + 1))):
                # A PET study starts with its CT series (PET/CT).
                series_modality = "CT" if modality == "PT" and number == 0 else modality
                parts = BODY_PARTS[series_modality]
                series.append({"modality": series_modality, "model": models[number % len(models)],
                               "sop_class": sop_class, "count": 0,
                               "body_part": parts[int(self.rng.integers(len(parts)))],
                               "protocol": f"{series_modality} PROTOCOL {int(self.rng.integers(40)):02d}"})
            date = start + dt.timedelta(days=int(self.rng.integers(0, 5479)))
            studies.append({
                "patient_id": patient_id, "patient_name": name, "birth": born, "date": date,
                "acquired": date + dt.timedelta(days=int(self.rng.integers(0, 2))),
                "description": DESCRIPTIONS[modality][int(self.rng.integers(len(DESCRIPTIONS[modality])))],
                "accession": f"ACC{index:08d}", "physician": PHYSICIANS[int(self.rng.integers(len(PHYSICIANS)))],
                "series": series,
            })
        all_series = [series for study in studies for series in study["series"]]
        big = self.rng.choice([i for i, s in enumerate(all_series) if s["modality"] == "CT"],
                              size=self.big_series, replace=False)
        for i in big:
            all_series[i]["count"] = 500
        rest = [s for i, s in enumerate(all_series) if s["count"] == 0]
        remaining = self.instances - 500 * self.big_series - len(rest)
        if remaining < 0:
            raise SystemExit("too few instances for that many series")
        lognormal = self.rng.lognormal(mean=0.0, sigma=1.2, size=len(rest))
        for series, extra in zip(rest, self.rng.multinomial(remaining, lognormal / lognormal.sum()), strict=True):
            series["count"] = 1 + int(extra)
        return studies

    def load(self) -> None:
        started = time.monotonic()
        studies = self.plan()
        print(f"planned {len(studies)} studies in {time.monotonic() - started:.1f}s", flush=True)
        raw = connection.cursor().cursor  # the psycopg cursor, for COPY
        raw.execute("SET synchronous_commit = off")
        tables = {model: model._meta.db_table for model in (Study, Series, Instance, PersonNameWord)}
        study_cols = ["id", "partition_id", "study_instance_uid", "patient_id", "patient_name", "patient_name_search",
                      "patient_birth_date", "study_date", "study_description", "accession_number",
                      "referring_physician_name", "referring_physician_name_search", "modalities_in_study",
                      "num_series", "num_instances", "created_at", "updated_at"]
        series_cols = ["id", "partition_id", "study_id", "series_instance_uid", "modality",
                       "performed_procedure_step_start_date", "manufacturer_model_name", "num_instances",
                       "created_at", "updated_at"]
        instance_cols = ["id", "partition_id", "study_id", "series_id", "study_instance_uid", "series_instance_uid",
                         "sop_instance_uid", "sop_class_uid", "instance_number", "status", "watermark",
                         "transfer_syntax_uid", "file_size", "number_of_frames", "frame_index", "metadata",
                         "search_metadata", "created_at", "updated_at"]
        word_cols = ["partition_id", "study_id", "attribute", "word", "name"]
        pk = self.partition.pk
        series_id = instance_id = 0
        with raw.copy(f"COPY {tables[Study]} ({','.join(study_cols)}) FROM STDIN") as study_copy:
            for study_id, study in enumerate(studies, start=1):
                study["uid"] = f"{UID_ROOT}.{study_id}"
                values = {
                    "PatientID": study["patient_id"], "PatientName": study["patient_name"],
                    "PatientBirthDate": _da(study["birth"]), "StudyDate": _da(study["date"]),
                    "StudyDescription": study["description"], "AccessionNumber": study["accession"],
                    "ReferringPhysicianName": study["physician"],
                }
                study["values"] = values
                study["columns"] = indexed_columns(values)["study"]
                columns = study["columns"]
                modalities = "\\".join(sorted({s["modality"] for s in study["series"]}))
                study_copy.write_row([
                    study_id, pk, study["uid"], columns["patient_id"], columns["patient_name"],
                    columns["patient_name_search"], columns["patient_birth_date"], columns["study_date"],
                    columns["study_description"], columns["accession_number"], columns["referring_physician_name"],
                    columns["referring_physician_name_search"], modalities, len(study["series"]),
                    sum(s["count"] for s in study["series"]), self.now, self.now,
                ])
        print(f"studies copied at {time.monotonic() - started:.1f}s", flush=True)
        with raw.copy(f"COPY {tables[PersonNameWord]} ({','.join(word_cols)}) FROM STDIN") as word_copy:
            for study_id, study in enumerate(studies, start=1):
                for attribute, column in SEARCH_COLUMNS.items():
                    for row in person_name_word_rows(partition_id=pk, study_id=study_id, attribute=attribute,
                                                     search_form=study["columns"][column]):
                        word_copy.write_row([row.partition_id, row.study_id, int(row.attribute), row.word, row.name])
        print(f"person-name words copied at {time.monotonic() - started:.1f}s", flush=True)
        with raw.copy(f"COPY {tables[Series]} ({','.join(series_cols)}) FROM STDIN") as series_copy:
            for study_id, study in enumerate(studies, start=1):
                for number, series in enumerate(study["series"], start=1):
                    series_id += 1
                    series["id"] = series_id
                    series["uid"] = f"{study['uid']}.{number}"
                    series["values"] = {"Modality": series["modality"], "ManufacturerModelName": series["model"],
                                        "PerformedProcedureStepStartDate": study["values"]["StudyDate"]}
                    columns = indexed_columns(series["values"])["series"]
                    series_copy.write_row([
                        series_id, pk, study_id, series["uid"], columns["modality"],
                        columns["performed_procedure_step_start_date"], columns["manufacturer_model_name"],
                        series["count"], self.now, self.now,
                    ])
        print(f"series copied at {time.monotonic() - started:.1f}s", flush=True)
        # Read before the COPY: a query on the connection while it copies would wait forever.
        keys = projection_keys()
        with raw.copy(f"COPY {tables[Instance]} ({','.join(instance_cols)}) FROM STDIN") as instance_copy:
            for study_id, study in enumerate(studies, start=1):
                for series in study["series"]:
                    template = self.series_template(study, series)
                    # The store path's projection of the same document (placeholders kept).
                    projection = search_projection(json.loads(template), keys=keys)
                    for number in range(1, series["count"] + 1):
                        instance_id += 1
                        sop = f"{series['uid']}.{number}"
                        metadata = (
                            template.replace("@SOP@", sop).replace('"@NUMBER@"', str(number))
                            .replace("@VARIANT@", "AB"[number % 2])
                        )
                        search_metadata = projection.replace("@SOP@", sop).replace('"@NUMBER@"', str(number))
                        instance_copy.write_row([
                            instance_id, pk, study_id, series["id"], study["uid"], series["uid"], sop,
                            series["sop_class"], number, 1, instance_id, ELE, 0, 1, "", metadata,
                            search_metadata, self.now, self.now,
                        ])
                if study_id % 20000 == 0:
                    print(f"  {study_id} studies' instances at {time.monotonic() - started:.1f}s", flush=True)
        print(f"{instance_id} instances copied at {time.monotonic() - started:.1f}s", flush=True)
        for model in (Study, Series, Instance, PersonNameWord):
            raw.execute(f"SELECT setval(pg_get_serial_sequence('{tables[model]}', 'id'), "
                        f"(SELECT coalesce(max(id), 1) FROM {tables[model]}))")
        # Watermarks handed out later must not collide with the loaded ones.
        raw.execute("SELECT setval(pg_get_serial_sequence('studies_watermarksequence', 'id'), %s)", [instance_id + 1])
        # VACUUM, not only ANALYZE: it sets the visibility map that index-only scans (the fuzzy
        # name search) rely on. In production autovacuum does it (insert-triggered since
        # PostgreSQL 13); a freshly COPYed table has none until then.
        for table in tables.values():
            raw.execute(f"VACUUM (ANALYZE) {table}")
        # VACUUM cannot mark pages all-visible while an older snapshot is still open elsewhere:
        # say so, since the fuzzy search then reads the heap for those pages.
        raw.execute("SELECT relallvisible, relpages FROM pg_class WHERE relname = %s", [tables[PersonNameWord]])
        visible, pages = raw.fetchone()
        print(f"{tables[PersonNameWord]}: {visible} of {pages} pages all-visible"
              + ("" if visible == pages else " (run VACUUM again when no transaction is open)"), flush=True)
        print(f"done in {time.monotonic() - started:.1f}s", flush=True)

    def series_template(self, study: dict, series: dict) -> str:
        """The series' instance metadata with @SOP@ and @NUMBER@ left to fill in per instance."""
        data = dict(self.base)
        for keyword, vr, value in (
            ("PatientID", "LO", study["values"]["PatientID"]),
            ("PatientName", "PN", study["values"]["PatientName"]),
            ("PatientBirthDate", "DA", study["values"]["PatientBirthDate"]),
            ("StudyDate", "DA", study["values"]["StudyDate"]),
            ("StudyDescription", "LO", study["values"]["StudyDescription"]),
            ("AccessionNumber", "SH", study["values"]["AccessionNumber"]),
            ("ReferringPhysicianName", "PN", study["values"]["ReferringPhysicianName"]),
            ("StudyInstanceUID", "UI", study["uid"]),
            ("SeriesInstanceUID", "UI", series["uid"]),
            ("Modality", "CS", series["modality"]),
            ("ManufacturerModelName", "LO", series["model"]),
            ("PerformedProcedureStepStartDate", "DA", series["values"]["PerformedProcedureStepStartDate"]),
            ("SOPClassUID", "UI", series["sop_class"]),
            ("SOPInstanceUID", "UI", "@SOP@"),
            ("InstanceNumber", "IS", "@NUMBER@"),
            ("BodyPartExamined", "CS", series["body_part"]),
            ("ProtocolName", "LO", f"{series['protocol']} @VARIANT@"),
            ("AcquisitionDate", "DA", _da(study["acquired"])),
        ):
            data[f"{pydicom.datadict.tag_for_keyword(keyword):08X}"] = _element(vr, value)
        return json_dumps(dict(sorted(data.items())))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--studies", type=int, default=100_000)
    parser.add_argument("--instances", type=int, default=1_000_000)
    parser.add_argument("--big-series", type=int, default=100, help="series of exactly 500 instances")
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--reset", action="store_true", help="empty the study tables first (benchmark DB only!)")
    args = parser.parse_args()
    if connection.vendor != "postgresql":
        raise SystemExit("the benchmark archive is loaded into PostgreSQL (set DATABASE_URL)")
    call_command("migrate", verbosity=0)
    if Study.objects.exists():
        if not args.reset:
            raise SystemExit(f"{connection.settings_dict['NAME']} already holds studies; pass --reset to empty it")
        with connection.cursor() as cursor:
            cursor.execute("TRUNCATE studies_personnameword, studies_instance, studies_series, studies_study CASCADE")
    Loader(studies=args.studies, instances=args.instances, big_series=args.big_series, seed=args.seed).load()


if __name__ == "__main__":
    main()
