"""Studies, series and instances: the QIDO index and the pointer to each stored blob.

Every row belongs to one partition; the same UIDs in two partitions are unrelated rows.
Attribute columns hold the values QIDO searches; the full DICOM JSON of each version lives
on the instance so WADO metadata never re-reads a blob.
"""

from __future__ import annotations

from django.db import models
from django.db.models import F, Q
from django.db.models.functions import Upper

from partitions.models import Partition

UID_LENGTH = 64
# Person-name columns, and the folded names on word rows (one length: a folded name always fits).
PERSON_NAME_LENGTH = 330
# A PN component group holds at most 64 characters; case folding may lengthen a word (ß -> ss).
PERSON_NAME_WORD_LENGTH = 128


class Study(models.Model):
    """A study in one partition. Attribute columns mirror the most recently stored instance."""

    partition = models.ForeignKey(Partition, on_delete=models.PROTECT, related_name="studies")
    study_instance_uid = models.CharField(max_length=UID_LENGTH)
    patient_id = models.CharField(max_length=64, blank=True, default="")
    patient_name = models.CharField(max_length=PERSON_NAME_LENGTH, blank=True, default="")
    # Case- and accent-folded PatientName with ^ and = turned into spaces, for PN matching.
    patient_name_search = models.CharField(max_length=PERSON_NAME_LENGTH, blank=True, default="")
    patient_birth_date = models.DateField(null=True, blank=True)
    study_date = models.DateField(null=True, blank=True)
    study_description = models.CharField(max_length=64, blank=True, default="")
    accession_number = models.CharField(max_length=64, blank=True, default="")
    referring_physician_name = models.CharField(max_length=PERSON_NAME_LENGTH, blank=True, default="")
    referring_physician_name_search = models.CharField(max_length=PERSON_NAME_LENGTH, blank=True, default="")
    # Backslash-separated distinct Modality values of the study's visible series.
    modalities_in_study = models.CharField(max_length=256, blank=True, default="")
    # Counters of *created* instances; a study with none is invisible to every reader.
    num_series = models.IntegerField(default=0)
    num_instances = models.IntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "studies"
        constraints = [
            models.UniqueConstraint(fields=["partition", "study_instance_uid"], name="study_uid_per_partition"),
        ]
        indexes = [
            models.Index(fields=["partition", "patient_id"], name="study_patient_id"),
            models.Index(fields=["partition", "patient_name_search"], name="study_patient_name"),
            models.Index(fields=["partition", "study_date"], name="study_date"),
            models.Index(fields=["partition", "accession_number"], name="study_accession"),
            models.Index(fields=["partition", "referring_physician_name_search"], name="study_referring"),
            models.Index(fields=["partition", "study_description"], name="study_description"),
            models.Index(fields=["partition", "patient_birth_date"], name="study_birth_date"),
            # QIDO matches non-PN strings case-insensitively (as Microsoft's collation does).
            models.Index(F("partition"), Upper("patient_id"), name="study_patient_id_ci"),
            models.Index(F("partition"), Upper("accession_number"), name="study_accession_ci"),
            models.Index(F("partition"), Upper("study_description"), name="study_description_ci"),
        ]

    def __str__(self) -> str:
        return self.study_instance_uid


class Series(models.Model):
    """A series of a study; attribute columns mirror the most recently stored instance."""

    partition = models.ForeignKey(Partition, on_delete=models.PROTECT, related_name="+")
    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="series")
    series_instance_uid = models.CharField(max_length=UID_LENGTH)
    modality = models.CharField(max_length=16, blank=True, default="")
    performed_procedure_step_start_date = models.DateField(null=True, blank=True)
    manufacturer_model_name = models.CharField(max_length=64, blank=True, default="")
    num_instances = models.IntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "series"
        constraints = [
            models.UniqueConstraint(fields=["study", "series_instance_uid"], name="series_uid_per_study"),
        ]
        indexes = [
            models.Index(fields=["partition", "series_instance_uid"], name="series_uid"),
            models.Index(fields=["partition", "modality"], name="series_modality"),
            models.Index(fields=["partition", "performed_procedure_step_start_date"], name="series_pps_date"),
            models.Index(fields=["partition", "manufacturer_model_name"], name="series_model"),
            models.Index(F("partition"), Upper("modality"), name="series_modality_ci"),
            models.Index(F("partition"), Upper("manufacturer_model_name"), name="series_model_ci"),
        ]

    def __str__(self) -> str:
        return self.series_instance_uid


class InstanceStatus(models.IntegerChoices):
    CREATING = 0, "creating"
    CREATED = 1, "created"


class Instance(models.Model):
    """One SOP instance and its stored versions.

    `watermark` names the latest version's blob; `original_watermark` the first-stored
    version kept after a bulk update (null until then). Readers only ever see rows whose
    status is CREATED, so a half-written instance is never visible.
    """

    # No single-column indexes on the foreign keys: each leads a composite index below
    # (partition: instance_uids_per_partition; study, series: instance_*_newest), and every
    # index costs an entry on each STOW's insert and again on its status update.
    partition = models.ForeignKey(Partition, on_delete=models.PROTECT, related_name="+", db_index=False)
    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="instances", db_index=False)
    series = models.ForeignKey(Series, on_delete=models.CASCADE, related_name="instances", db_index=False)
    study_instance_uid = models.CharField(max_length=UID_LENGTH)
    series_instance_uid = models.CharField(max_length=UID_LENGTH)
    sop_instance_uid = models.CharField(max_length=UID_LENGTH)
    sop_class_uid = models.CharField(max_length=UID_LENGTH, blank=True, default="")
    instance_number = models.IntegerField(null=True, blank=True)
    status = models.SmallIntegerField(choices=InstanceStatus.choices, default=InstanceStatus.CREATING)
    watermark = models.BigIntegerField(unique=True)
    original_watermark = models.BigIntegerField(null=True, blank=True)
    # Set while a bulk update has written the next version but not yet switched to it.
    new_watermark = models.BigIntegerField(null=True, blank=True)
    transfer_syntax_uid = models.CharField(max_length=UID_LENGTH, blank=True, default="")
    file_size = models.BigIntegerField(default=0)
    original_file_size = models.BigIntegerField(null=True, blank=True)
    number_of_frames = models.IntegerField(default=0)
    # JSON list of [[offset, length], ...] fragments per frame in the *original* file, or
    # empty when frames must be found by parsing. Pixel data never changes across versions.
    frame_index = models.TextField(blank=True, default="")
    # DICOM JSON (PS3.18 F.2) without bulk-data VRs, as text so it is served verbatim.
    metadata = models.TextField(default="{}")
    # The attributes of `metadata` a QIDO result can show (studies.search.attributes.
    # PROJECTION_TAGS), as DICOM JSON text: what a search decodes instead of the whole header.
    # Empty for rows written before it existed; searches then read `metadata`.
    search_metadata = models.TextField(blank=True, default="")
    original_metadata = models.TextField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["partition", "study_instance_uid", "series_instance_uid", "sop_instance_uid"],
                name="instance_uids_per_partition",
            ),
        ]
        indexes = [
            models.Index(fields=["partition", "sop_instance_uid"], name="instance_sop_uid"),
            models.Index(fields=["partition", "sop_class_uid"], name="instance_sop_class"),
            models.Index(
                fields=["created_at"], name="instance_creating", condition=Q(status=InstanceStatus.CREATING)
            ),
            # QIDO: the newest visible instance of a study or series, and instances newest first.
            models.Index(fields=["study", "status", "watermark"], name="instance_study_newest"),
            models.Index(fields=["series", "status", "watermark"], name="instance_series_newest"),
        ]

    def __str__(self) -> str:
        return self.sop_instance_uid


class PersonNameAttribute(models.IntegerChoices):
    PATIENT_NAME = 0, "PatientName"
    REFERRING_PHYSICIAN_NAME = 1, "ReferringPhysicianName"


class PersonNameWord(models.Model):
    """One distinct word of a study's folded PatientName or ReferringPhysicianName, with the name.

    QIDO fuzzy matching asks whether every word of the query is a prefix of some name word.
    One query word is answered by a range of the word index; each row also carries the whole
    folded name (words joined by single spaces) so the other query words are checked on the
    index entry itself, with no look-up per candidate study. Plain btree and LIKE, on SQLite
    and PostgreSQL alike (no trigram or full-text extension). Rows mirror the study columns
    and are rewritten whenever the name changes (`studies.services.person_names`).
    """

    # No single-column foreign-key indexes: each is the leading column of an index below
    # (partition: the match index; study: the unique constraint, which serves the cascade
    # from a study and the rewrite of its rows).
    partition = models.ForeignKey(Partition, on_delete=models.PROTECT, related_name="+", db_index=False)
    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="+", db_index=False)
    attribute = models.SmallIntegerField(choices=PersonNameAttribute.choices)
    word = models.CharField(max_length=PERSON_NAME_WORD_LENGTH)
    # The study's folded name for this attribute (`Study.patient_name_search` and the like).
    name = models.CharField(max_length=PERSON_NAME_LENGTH, default="")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["study", "attribute", "word"], name="person_name_word_per_study"),
        ]
        indexes = [
            # varchar_pattern_ops lets PostgreSQL answer `word LIKE 'joh%'` with an index range
            # under any database collation (other backends ignore opclasses). Study and name in
            # the key make the index covering: a fuzzy search is an index-only scan that filters
            # on `name` and returns study ids (given a visibility map kept by (auto)vacuum).
            models.Index(
                fields=["partition", "attribute", "word", "study", "name"],
                name="person_name_word_match",
                opclasses=["", "", "varchar_pattern_ops", "", ""],
            ),
        ]

    def __str__(self) -> str:
        return self.word


class WatermarkSequence(models.Model):
    """Issues globally unique, increasing version numbers (rows are deleted right after use)."""

    id = models.BigAutoField(primary_key=True)


class OrphanBlob(models.Model):
    """A blob whose row is gone but whose removal failed; `manage.py dicom_cleanup` retries it."""

    blob_name = models.CharField(max_length=255, unique=True)
    reason = models.CharField(max_length=255, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.blob_name



# Extended query tags live in their own module; imported so Django registers them with the app.
import studies.eqt.models  # noqa: E402,F401
