"""Workitems in the admin: read-only, listed by partition, state, scheduled start and patient.

Workitems change only through UPS-RS (its services keep the state machine and the
compare-and-swap); nothing here can add, change or delete one.
"""

from __future__ import annotations

import json

from django.contrib import admin
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString

from dicomsvc.admin_tools import attribute_rows
from partitions.admin_tools import PartitionedTableAdmin
from studies.workitems.models import Workitem


@admin.register(Workitem)
class WorkitemAdmin(PartitionedTableAdmin):
    list_display = (
        "workitem_uid", "partition", "state", "scheduled", "patient_name", "patient_id", "accession_number",
        "updated_at",
    )
    list_filter = ("partition", "state")
    list_select_related = ("partition",)
    ordering = ("-id",)
    uid_search_fields = ("workitem_uid", "patient_id", "accession_number", "study_instance_uid")
    search_help_text = "Exact workitem UID, PatientID, AccessionNumber or StudyInstanceUID."
    fieldsets = (
        (None, {"fields": ("partition", "workitem_uid", "state", "claimed", ("created_at", "updated_at"))}),
        ("Searchable attributes", {"fields": (
            ("patient_name", "patient_id"), "scheduled", ("accession_number", "requested_procedure_id"),
            ("station_name_code", "station_class_code", "station_location_code"), "study",
        )}),
        ("DICOM attributes", {"fields": ("attributes",), "classes": ("wide",)}),
    )
    readonly_fields = ("scheduled", "claimed", "study", "attributes")

    @admin.display(description="Scheduled start")
    def scheduled(self, workitem: Workitem) -> str:
        value = workitem.scheduled_start
        if not value:
            return "—"
        return f"{value[:4]}-{value[4:6]}-{value[6:8]} {value[8:10]}:{value[10:12]}:{value[12:14]}"

    @admin.display(description="Study instance UID")
    def study(self, workitem: Workitem) -> SafeString | str:
        """The study list searched for the UID (the study may be stored later, or in no partition yet)."""
        uid = workitem.study_instance_uid
        if not uid:
            return "—"
        return format_html('<a href="{}?q={}">{}</a>', reverse("admin:studies_study_changelist"), uid, uid)

    @admin.display(description="Claimed", boolean=True)
    def claimed(self, workitem: Workitem) -> bool:
        # Whether a performer holds it; the transaction UID itself is never shown.
        return bool(workitem.transaction_uid)

    @admin.display(description="DICOM attributes")
    def attributes(self, workitem: Workitem) -> SafeString:
        rows = attribute_rows(json.loads(workitem.dataset or "{}"))
        return SafeString(render_to_string("admin/studies/attributes.html", {"rows": rows}))
