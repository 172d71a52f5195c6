"""Workitems: one row per UPS instance in a partition, its DICOM JSON and its searchable columns."""

from __future__ import annotations

from django.db import models

from partitions.models import Partition

UID_LENGTH = 64
PERSON_NAME_LENGTH = 330
# A PN component group holds at most 64 characters; case folding may lengthen a word (ß -> ss).
PERSON_NAME_WORD_LENGTH = 128


class ProcedureStepState(models.TextChoices):
    """ProcedureStepState (0074,1000) values, PS3.4 Table CC.1.1-1."""

    SCHEDULED = "SCHEDULED"
    IN_PROGRESS = "IN PROGRESS"
    CANCELED = "CANCELED"
    COMPLETED = "COMPLETED"


FINAL_STATES = frozenset({ProcedureStepState.CANCELED, ProcedureStepState.COMPLETED})


class Workitem(models.Model):
    """A UPS instance. `dataset` is its DICOM JSON without the Transaction UID, which lives in
    `transaction_uid` alone so no reader can return it. Every write is a compare-and-swap on
    `version`: a writer that read an older version changes nothing."""

    # No single-column partition index: every index below leads with the partition, and a lone one
    # tempted the planner (for a partition without statistics yet) to read a whole partition to
    # find one UID.
    partition = models.ForeignKey(Partition, on_delete=models.PROTECT, related_name="workitems", db_index=False)
    workitem_uid = models.CharField(max_length=UID_LENGTH)
    state = models.CharField(max_length=16, choices=ProcedureStepState.choices)
    # Empty until a performer claims the workitem (SCHEDULED -> IN PROGRESS).
    transaction_uid = models.CharField(max_length=UID_LENGTH, blank=True, default="")
    version = models.PositiveIntegerField(default=1)
    dataset = models.TextField()
    # Searchable attributes (the first item's value for those inside a sequence).
    patient_name = models.CharField(max_length=PERSON_NAME_LENGTH, blank=True, default="")
    # Case- and accent-folded PatientName words, space separated, for PN matching.
    patient_name_search = models.CharField(max_length=PERSON_NAME_LENGTH, blank=True, default="")
    patient_id = models.CharField(max_length=64, blank=True, default="")
    accession_number = models.CharField(max_length=64, blank=True, default="")
    requested_procedure_id = models.CharField(max_length=64, blank=True, default="")
    # ScheduledProcedureStepStartDateTime as YYYYMMDDHHMMSS.FFFFFF: text order is time order.
    scheduled_start = models.CharField(max_length=21, blank=True, default="")
    station_name_code = models.CharField(max_length=64, blank=True, default="")
    station_class_code = models.CharField(max_length=64, blank=True, default="")
    station_location_code = models.CharField(max_length=64, blank=True, default="")
    study_instance_uid = models.CharField(max_length=UID_LENGTH, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["partition", "workitem_uid"], name="workitem_uid_per_partition"),
        ]
        indexes = [
            # With the id, a page of one state in creation order is read in index order.
            models.Index(fields=["partition", "state", "id"], name="workitem_state"),
            models.Index(fields=["partition", "scheduled_start"], name="workitem_scheduled_start"),
            models.Index(fields=["partition", "patient_name_search"], name="workitem_patient_name"),
            models.Index(fields=["partition", "patient_id"], name="workitem_patient_id"),
            models.Index(fields=["partition", "accession_number"], name="workitem_accession"),
            models.Index(fields=["partition", "requested_procedure_id"], name="workitem_requested_procedure"),
            models.Index(fields=["partition", "study_instance_uid"], name="workitem_study"),
            models.Index(fields=["partition", "station_name_code"], name="workitem_station_name"),
            models.Index(fields=["partition", "station_class_code"], name="workitem_station_class"),
            models.Index(fields=["partition", "station_location_code"], name="workitem_station_location"),
        ]

    def __str__(self) -> str:
        return self.workitem_uid


class WorkitemNameWord(models.Model):
    """One distinct word of a workitem's folded PatientName, with the whole folded name.

    Fuzzy matching asks whether every query word begins some word of the name: the first
    query word is a range of the word index, and the others are checked on the name the index
    entry carries, so no workitem row is read to find the matches (a scan of the workitem
    rows would grow with the partition). Written with the workitem; PatientName never changes
    after creation, so the rows never do. Plain btree and LIKE, on SQLite and PostgreSQL alike.
    """

    # No single-column foreign-key indexes: each leads an index below.
    partition = models.ForeignKey(Partition, on_delete=models.PROTECT, related_name="+", db_index=False)
    workitem = models.ForeignKey(Workitem, on_delete=models.CASCADE, related_name="+", db_index=False)
    word = models.CharField(max_length=PERSON_NAME_WORD_LENGTH)
    name = models.CharField(max_length=PERSON_NAME_LENGTH, default="")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["workitem", "word"], name="workitem_name_word_per_workitem"),
        ]
        indexes = [
            # varchar_pattern_ops: PostgreSQL serves `word LIKE 'abc%'` from the index whatever
            # the database collation (SQLite ignores operator classes).
            models.Index(
                fields=["partition", "word", "workitem", "name"],
                name="workitem_name_word_match",
                opclasses=["", "varchar_pattern_ops", "", ""],
            ),
        ]

    def __str__(self) -> str:
        return self.word
