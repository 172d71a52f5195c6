"""Instances in the admin: list columns by name, the frame viewer, attributes, the stored file."""

from __future__ import annotations

import json
from typing import Any

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.template.loader import render_to_string
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString

from dicomsvc.admin_tools import WATERMARK_HELP, attribute_rows, explained
from dicomsvc.api.streaming import file_chunks
from partitions.admin_tools import PartitionedTableAdmin
from studies.admin.display import (
    EMPTY,
    change_url,
    filesize,
    full_uid,
    short_uid,
    uid_name,
    uid_with_name,
    viewer_link,
)
from studies.admin.media import rendered_response, rendered_url
from studies.blobstore import blob_name, blob_open
from studies.models import Instance, Series, Study
from studies.versions import version_select

WINDOW_CENTER, WINDOW_WIDTH, WINDOW_EXPLANATION = "00281050", "00281051", "00281055"


def window_presets(metadata: dict[str, Any]) -> list[dict[str, Any]]:
    """The dataset's own windows (center, width, explanation), as the viewer's presets."""
    centers = (metadata.get(WINDOW_CENTER) or {}).get("Value") or []
    widths = (metadata.get(WINDOW_WIDTH) or {}).get("Value") or []
    names = (metadata.get(WINDOW_EXPLANATION) or {}).get("Value") or []
    presets = []
    for index, (center, width) in enumerate(zip(centers, widths, strict=False)):
        if center is None or width is None or float(width) <= 0:
            continue
        name = names[index] if index < len(names) and names[index] else f"Window {index + 1}"
        presets.append({"name": name, "center": float(center), "width": float(width)})
    return presets


@admin.register(Instance)
class InstanceAdmin(PartitionedTableAdmin):
    list_display = (
        "number", "sop_class", "transfer_syntax", "size", "frames", "series_uid", "study_uid", "partition",
        "status", "uid",
    )
    list_display_links = None
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
            "partition", "study_link", "series_link", "uid_full", ("sop_class_full", "instance_number"), "status",
        )}),
        ("Image", {"fields": ("viewer",), "classes": ("wide",)}),
        ("Stored file", {"fields": (
            "transfer_syntax_full", ("size", "number_of_frames"), ("original_size", "original_version"), "version",
            "download", ("created_at", "updated_at"),
        )}),
        ("DICOM attributes", {"fields": ("attributes",), "classes": ("wide",)}),
    )
    readonly_fields = (
        "study_link", "series_link", "uid_full", "sop_class_full", "transfer_syntax_full", "size", "original_size",
        "version", "original_version", "download", "viewer", "attributes",
    )

    def get_urls(self) -> list[Any]:
        download = self.admin_site.admin_view(self.download_view)
        rendered = self.admin_site.admin_view(self.rendered_view, cacheable=True)
        return [
            path("<int:pk>/download/", download, name="studies_instance_download"),
            path("<int:pk>/rendered/", rendered, name="studies_instance_rendered"),
            *super().get_urls(),
        ]

    def _viewable(self, request: HttpRequest, pk: int) -> Instance:
        instance = Instance.objects.select_related("partition").filter(pk=pk).first()
        if instance is None:
            raise Http404("No such instance.")
        if not self.has_view_permission(request, instance):
            raise PermissionDenied
        return instance

    def rendered_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        """A frame as JPEG (`?frame=`, `&wc=&ww=` for a window), or a placeholder naming why not."""
        return rendered_response(request, self._viewable(request, pk))

    def download_view(self, request: HttpRequest, pk: int) -> StreamingHttpResponse:
        """Stream the stored file (`?version=original` for the pre-update one) to staff who may view instances."""
        instance = self._viewable(request, pk)
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

    @admin.display(description="Number", ordering="instance_number")
    def number(self, instance: Instance) -> SafeString:
        text = EMPTY if instance.instance_number is None else str(instance.instance_number)
        return format_html('<a href="{}">{}</a>', change_url("instance", instance.pk), text)

    @admin.display(description="Frames")
    def frames(self, instance: Instance) -> int:
        return instance.number_of_frames

    @admin.display(description="Series")
    def series_uid(self, instance: Instance) -> SafeString:
        return short_uid(instance.series_instance_uid, change_url("series", instance.series_id))

    @admin.display(description="Study")
    def study_uid(self, instance: Instance) -> SafeString:
        return short_uid(instance.study_instance_uid, change_url("study", instance.study_id))

    @admin.display(description="SOP instance UID")
    def uid(self, instance: Instance) -> SafeString:
        return short_uid(instance.sop_instance_uid, change_url("instance", instance.pk))

    @admin.display(description="SOP instance UID")
    def uid_full(self, instance: Instance) -> SafeString:
        return full_uid(instance.sop_instance_uid)

    @admin.display(description="Study")
    def study_link(self, instance: Instance) -> SafeString:
        return full_uid(instance.study_instance_uid, change_url("study", instance.study_id))

    @admin.display(description="Series")
    def series_link(self, instance: Instance) -> SafeString:
        return full_uid(instance.series_instance_uid, change_url("series", instance.series_id))

    @admin.display(description="SOP class")
    def sop_class(self, instance: Instance) -> SafeString:
        return format_html('<span title="{}">{}</span>', instance.sop_class_uid, uid_name(instance.sop_class_uid))

    @admin.display(description="SOP class")
    def sop_class_full(self, instance: Instance) -> str:
        return uid_with_name(instance.sop_class_uid)

    @admin.display(description="Transfer syntax")
    def transfer_syntax(self, instance: Instance) -> SafeString:
        uid = instance.transfer_syntax_uid
        return format_html('<span title="{}">{}</span>', uid, uid_name(uid))

    @admin.display(description="Transfer syntax")
    def transfer_syntax_full(self, instance: Instance) -> str:
        return uid_with_name(instance.transfer_syntax_uid)

    @admin.display(description="File size")
    def size(self, instance: Instance) -> str:
        return filesize(instance.file_size)

    @admin.display(description="Original file size")
    def original_size(self, instance: Instance) -> str:
        return filesize(instance.original_file_size)

    @admin.display(description="Version")
    def version(self, instance: Instance) -> SafeString:
        return explained(instance.watermark, WATERMARK_HELP)

    @admin.display(description="Original version")
    def original_version(self, instance: Instance) -> SafeString | str:
        if instance.original_watermark is None:
            return "— (never updated)"
        return explained(
            instance.original_watermark, "The version first stored, kept when a bulk update changed the instance."
        )

    @admin.display(description="Stored file")
    def download(self, instance: Instance) -> SafeString:
        url = reverse("admin:studies_instance_download", args=[instance.pk])
        link = format_html('<a class="button" href="{}">Download ({})</a>', url, filesize(instance.file_size))
        viewer = viewer_link(
            study=instance.study_instance_uid, series=instance.series_instance_uid, instance=instance.sop_instance_uid
        )
        if instance.original_watermark is None:
            return format_html("{} {}", link, viewer)
        return format_html(
            '{} <a class="button" href="{}?version=original">Download original ({})</a> {}',
            link, url, filesize(instance.original_file_size), viewer,
        )

    @admin.display(description="Frames")
    def viewer(self, instance: Instance) -> SafeString:
        context: dict[str, Any] = {"frames": instance.number_of_frames}
        if instance.number_of_frames:
            context["image"] = rendered_url(instance.pk, instance.watermark)
            context["presets"] = window_presets(json.loads(instance.metadata or "{}"))
        return SafeString(render_to_string("admin/studies/frame_viewer.html", context))

    @admin.display(description="DICOM attributes")
    def attributes(self, instance: Instance) -> SafeString:
        rows = attribute_rows(json.loads(instance.metadata or "{}"))
        return SafeString(render_to_string("admin/studies/attributes.html", {"rows": rows}))
