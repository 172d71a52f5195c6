"""Studies, series and instances in the admin: read-only, exact UID/PatientID search, no COUNT(*).

Deleting DICOM data goes through the API (and its services, which write the change feed
and remove blobs); nothing here can add, change or delete a row.
"""

from __future__ import annotations

import json
from typing import Any

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, StreamingHttpResponse
from django.template.defaultfilters import filesizeformat
from django.template.loader import render_to_string
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString
from pydicom.uid import UID

from dicomsvc.admin_tools import attribute_rows
from dicomsvc.api.streaming import file_chunks
from partitions.admin_tools import PartitionedTableAdmin
from studies.blobstore import blob_name, blob_open
from studies.models import Instance, Series, Study
from studies.versions import version_select


def filesize(size: int | None) -> str:
    return "—" if size is None else filesizeformat(size)


def uid_name(uid: str) -> str:
    name = UID(uid).name if uid else ""
    return f"{uid} ({name})" if name and name != uid else uid


def change_link(model: str, pk: int, text: str) -> SafeString:
    return format_html('<a href="{}">{}</a>', reverse(f"admin:studies_{model}_change", args=[pk]), text)


def list_link(model: str, query: str, text: str) -> SafeString:
    return format_html('<a href="{}?{}">{}</a>', reverse(f"admin:studies_{model}_changelist"), query, text)


class SeriesInline(admin.TabularInline):
    model = Series
    fields = ("series_link", "modality", "manufacturer_model_name", "num_instances", "updated_at")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description="Series instance UID")
    def series_link(self, series: Series) -> SafeString:
        return change_link("series", series.pk, series.series_instance_uid)


@admin.register(Study)
class StudyAdmin(PartitionedTableAdmin):
    list_display = (
        "study_instance_uid", "partition", "patient_id", "patient_name", "study_date",
        "modalities_in_study", "num_series", "num_instances", "updated_at",
    )
    list_filter = ("partition",)
    list_select_related = ("partition",)
    ordering = ("-id",)
    uid_search_fields = ("study_instance_uid", "patient_id")
    search_help_text = "Exact StudyInstanceUID or PatientID."
    fields = (
        "partition", "study_instance_uid", "patient_id", "patient_name", "patient_birth_date", "study_date",
        "study_description", "accession_number", "referring_physician_name", "modalities_in_study",
        "contents", "created_at", "updated_at",
    )
    readonly_fields = ("contents",)
    inlines = [SeriesInline]

    @admin.display(description="Contents")
    def contents(self, study: Study) -> SafeString:
        return format_html(
            "{} · {}",
            list_link("series", f"study__id__exact={study.pk}", f"{study.num_series} series"),
            list_link("instance", f"study__id__exact={study.pk}", f"{study.num_instances} instances"),
        )


@admin.register(Series)
class SeriesAdmin(PartitionedTableAdmin):
    list_display = ("series_instance_uid", "study_uid", "partition", "modality", "num_instances", "updated_at")
    list_filter = ("partition",)
    list_select_related = ("partition", "study")
    ordering = ("-id",)
    uid_search_fields = ("series_instance_uid",)
    related_search = {"study": (Study, ("study_instance_uid", "patient_id"))}
    search_help_text = "Exact SeriesInstanceUID, StudyInstanceUID or PatientID."
    fields = (
        "partition", "study_link", "series_instance_uid", "modality", "performed_procedure_step_start_date",
        "manufacturer_model_name", "contents", "created_at", "updated_at",
    )
    readonly_fields = ("study_link", "contents")

    @admin.display(description="Study instance UID")
    def study_uid(self, series: Series) -> str:
        return series.study.study_instance_uid

    @admin.display(description="Study")
    def study_link(self, series: Series) -> SafeString:
        return change_link("study", series.study_id, series.study.study_instance_uid)

    @admin.display(description="Contents")
    def contents(self, series: Series) -> SafeString:
        return list_link("instance", f"series__id__exact={series.pk}", f"{series.num_instances} instances")


@admin.register(Instance)
class InstanceAdmin(PartitionedTableAdmin):
    list_display = (
        "sop_instance_uid", "series_instance_uid", "study_instance_uid", "partition", "instance_number",
        "transfer_syntax_uid", "size", "status", "created_at",
    )
    list_filter = ("partition", "status")
    list_select_related = ("partition",)
    ordering = ("-id",)
    uid_search_fields = ("sop_instance_uid",)
    related_search = {
        "series": (Series, ("series_instance_uid",)),
        "study": (Study, ("study_instance_uid", "patient_id")),
    }
    search_help_text = "Exact SOPInstanceUID, SeriesInstanceUID, StudyInstanceUID or PatientID."
    fieldsets = (
        (None, {"fields": (
            "partition", "study_link", "series_link", "sop_instance_uid", ("sop_class", "instance_number"), "status",
        )}),
        ("Stored file", {"fields": (
            "transfer_syntax", ("size", "number_of_frames"), ("original_size", "original_watermark"), "watermark",
            "download", ("created_at", "updated_at"),
        )}),
        ("DICOM attributes", {"fields": ("attributes",), "classes": ("wide",)}),
    )
    readonly_fields = (
        "study_link", "series_link", "sop_class", "transfer_syntax", "size", "original_size", "download", "attributes",
    )

    def get_urls(self) -> list[Any]:
        download = self.admin_site.admin_view(self.download_view)
        return [path("<int:pk>/download/", download, name="studies_instance_download"), *super().get_urls()]

    def download_view(self, request: HttpRequest, pk: int) -> StreamingHttpResponse:
        """Stream the stored file (`?version=original` for the pre-update one) to staff who may view instances."""
        instance = Instance.objects.filter(pk=pk).first()
        if instance is None:
            raise Http404("No such instance.")
        if not self.has_view_permission(request, instance):
            raise PermissionDenied
        version = version_select(
            original=request.GET.get("version") == "original",
            watermark=instance.watermark,
            original_watermark=instance.original_watermark,
            file_size=instance.file_size,
            original_file_size=instance.original_file_size,
        )
        name = blob_name(partition_key=instance.partition_id, watermark=version.watermark)
        response = StreamingHttpResponse(file_chunks(lambda: blob_open(name=name)), content_type="application/dicom")
        suffix = "-original" if version.original else ""
        response["Content-Disposition"] = f'attachment; filename="{instance.sop_instance_uid}{suffix}.dcm"'
        if version.file_size:
            response["Content-Length"] = str(version.file_size)
        return response

    @admin.display(description="Study")
    def study_link(self, instance: Instance) -> SafeString:
        return change_link("study", instance.study_id, instance.study_instance_uid)

    @admin.display(description="Series")
    def series_link(self, instance: Instance) -> SafeString:
        return change_link("series", instance.series_id, instance.series_instance_uid)

    @admin.display(description="SOP class")
    def sop_class(self, instance: Instance) -> str:
        return uid_name(instance.sop_class_uid)

    @admin.display(description="Transfer syntax")
    def transfer_syntax(self, instance: Instance) -> str:
        return uid_name(instance.transfer_syntax_uid)

    @admin.display(description="File size")
    def size(self, instance: Instance) -> str:
        return filesize(instance.file_size)

    @admin.display(description="Original file size")
    def original_size(self, instance: Instance) -> str:
        return filesize(instance.original_file_size)

    @admin.display(description="Stored file")
    def download(self, instance: Instance) -> SafeString:
        url = reverse("admin:studies_instance_download", args=[instance.pk])
        link = format_html('<a class="button" href="{}">Download ({})</a>', url, filesize(instance.file_size))
        if instance.original_watermark is None:
            return link
        return format_html(
            '{} <a class="button" href="{}?version=original">Download original ({})</a>',
            link, url, filesize(instance.original_file_size),
        )

    @admin.display(description="DICOM attributes")
    def attributes(self, instance: Instance) -> SafeString:
        rows = attribute_rows(json.loads(instance.metadata or "{}"))
        return SafeString(render_to_string("admin/studies/attributes.html", {"rows": rows}))
