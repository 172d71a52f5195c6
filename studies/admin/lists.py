"""Studies and series in the admin: worklist columns, QIDO search, thumbnails, ZIP download."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, StreamingHttpResponse
from django.template.loader import render_to_string
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString

from partitions.admin_tools import PartitionedTableAdmin
from studies.admin.display import (
    EMPTY,
    change_url,
    date_text,
    full_uid,
    list_link,
    modalities_text,
    person_name,
    short_uid,
    viewer_link,
)
from studies.admin.media import archive_response, rendered_url
from studies.admin.search import StudySearchFilter
from studies.models import Series, Study
from studies.selectors_admin import (
    SERIES_LIST_TAGS,
    instances_for_series_page,
    metadata_value,
    series_list_annotate,
    series_summaries_for_study,
)

# Thumbnails on a series page; the instance list has the rest.
SERIES_PAGE_THUMBNAILS = 24


class DownloadMixin:
    """A `<pk>/download.zip` view streaming the object's stored files (`archive_response`)."""

    model: Any
    admin_site: Any

    def archive_scope(self, obj: Any) -> tuple[str, str | None, str]:
        raise NotImplementedError

    def download_urls(self) -> list[Any]:
        name = self.model._meta.model_name
        view = self.admin_site.admin_view(self.download_view)
        return [path("<int:pk>/download.zip", view, name=f"studies_{name}_zip")]

    def download_view(self, request: HttpRequest, pk: int) -> StreamingHttpResponse:
        obj = self.model.objects.select_related("partition").filter(pk=pk).first()
        if obj is None:
            raise Http404("No such object.")
        if not self.has_view_permission(request, obj):  # type: ignore[attr-defined]
            raise PermissionDenied
        study, series, filename = self.archive_scope(obj)
        return archive_response(partition=obj.partition, study=study, series=series, filename=filename)

    def download_button(self, obj: Any) -> SafeString:
        url = reverse(f"admin:studies_{self.model._meta.model_name}_zip", args=[obj.pk])
        return format_html('<a class="button" href="{}">Download ZIP</a>', url)


@admin.register(Study)
class StudyAdmin(DownloadMixin, PartitionedTableAdmin):
    list_display = (
        "patient", "patient_id", "birth_date", "date", "modalities", "study_description", "accession_number",
        "series_count", "instance_count", "partition", "uid",
    )
    list_display_links = None
    sortable_by = ("date",)
    list_filter = (StudySearchFilter, "partition")
    list_select_related = ("partition",)
    ordering = ("-id",)
    uid_search_fields = ("study_instance_uid", "patient_id")
    search_help_text = "Exact StudyInstanceUID or PatientID (the search panel finds names, dates, modalities)."
    fields = (
        "partition", "uid_full", "patient", "patient_id", "birth_date", "date", "study_description",
        "accession_number", "referring_physician_name", "modalities", "contents", "tools", "series_panel",
        "created_at", "updated_at",
    )
    readonly_fields = (
        "uid_full", "patient", "birth_date", "date", "modalities", "contents", "tools", "series_panel",
    )

    def get_urls(self) -> list[Any]:
        return [*self.download_urls(), *super().get_urls()]

    def archive_scope(self, obj: Any) -> tuple[str, str | None, str]:
        return obj.study_instance_uid, None, f"study-{obj.study_instance_uid}"

    @admin.display(description="Patient")
    def patient(self, study: Study) -> SafeString:
        name = person_name(study.patient_name) or EMPTY
        return format_html('<a href="{}">{}</a>', change_url("study", study.pk), name)

    @admin.display(description="Birth date")
    def birth_date(self, study: Study) -> str:
        return date_text(study.patient_birth_date)

    @admin.display(description="Study date", ordering="study_date")
    def date(self, study: Study) -> str:
        return date_text(study.study_date)

    @admin.display(description="Modalities")
    def modalities(self, study: Study) -> str:
        return modalities_text(study.modalities_in_study)

    @admin.display(description="Series")
    def series_count(self, study: Study) -> SafeString:
        return list_link("series", f"study__id__exact={study.pk}", str(study.num_series))

    @admin.display(description="Instances")
    def instance_count(self, study: Study) -> SafeString:
        return list_link("instance", f"study__id__exact={study.pk}", str(study.num_instances))

    @admin.display(description="Study UID")
    def uid(self, study: Study) -> SafeString:
        return short_uid(study.study_instance_uid, change_url("study", study.pk))

    @admin.display(description="Study instance UID")
    def uid_full(self, study: Study) -> SafeString:
        return full_uid(study.study_instance_uid)

    @admin.display(description="Contents")
    def contents(self, study: Study) -> SafeString:
        return format_html(
            "{} · {}",
            list_link("series", f"study__id__exact={study.pk}", f"{study.num_series} series"),
            list_link("instance", f"study__id__exact={study.pk}", f"{study.num_instances} instances"),
        )

    @admin.display(description="Files")
    def tools(self, study: Study) -> SafeString:
        return format_html("{} {}", self.download_button(study), viewer_link(study=study.study_instance_uid))

    @admin.display(description="Series")
    def series_panel(self, study: Study) -> SafeString:
        cards = [
            {
                "summary": summary,
                "url": change_url("series", summary.series.pk),
                "uid": short_uid(summary.series.series_instance_uid, change_url("series", summary.series.pk)),
                "image": rendered_url(summary.thumbnail_instance_id, summary.thumbnail_watermark)
                if summary.thumbnail_instance_id is not None and summary.thumbnail_watermark is not None
                else None,
            }
            for summary in series_summaries_for_study(study_id=study.pk)
        ]
        return SafeString(render_to_string("admin/studies/series_cards.html", {"cards": cards}))


@admin.register(Series)
class SeriesAdmin(DownloadMixin, PartitionedTableAdmin):
    list_display = (
        "modality_link", "number", "description", "body_part", "instance_count", "study_link", "partition", "uid",
    )
    list_display_links = None
    list_filter = ("partition",)
    list_select_related = ("partition", "study")
    ordering = ("-id",)
    uid_search_fields = ("series_instance_uid",)
    related_search = {"study": (Study, ("study_instance_uid", "patient_id"))}
    search_help_text = "Exact SeriesInstanceUID, StudyInstanceUID or PatientID."
    fields = (
        "partition", "study_link", "uid_full", "modality", "performed_procedure_step_start_date",
        "manufacturer_model_name", "contents", "tools", "thumbnails", "created_at", "updated_at",
    )
    readonly_fields = ("study_link", "uid_full", "contents", "tools", "thumbnails")

    def get_queryset(self, request: HttpRequest) -> QuerySet[Series]:
        return series_list_annotate(super().get_queryset(request))

    def get_urls(self) -> list[Any]:
        return [*self.download_urls(), *super().get_urls()]

    def archive_scope(self, obj: Any) -> tuple[str, str | None, str]:
        return obj.study.study_instance_uid, obj.series_instance_uid, f"series-{obj.series_instance_uid}"

    def _attribute(self, series: Any, name: str) -> str:
        return metadata_value(series.newest_metadata, SERIES_LIST_TAGS[name]) or EMPTY

    @admin.display(description="Modality")
    def modality_link(self, series: Series) -> SafeString:
        return format_html('<a href="{}">{}</a>', change_url("series", series.pk), series.modality or EMPTY)

    @admin.display(description="Number")
    def number(self, series: Any) -> str:
        return self._attribute(series, "number")

    @admin.display(description="Description")
    def description(self, series: Any) -> str:
        return self._attribute(series, "description")

    @admin.display(description="Body part")
    def body_part(self, series: Any) -> str:
        return self._attribute(series, "body_part")

    @admin.display(description="Instances")
    def instance_count(self, series: Series) -> SafeString:
        return list_link("instance", f"series__id__exact={series.pk}", str(series.num_instances))

    @admin.display(description="Study")
    def study_link(self, series: Series) -> SafeString:
        study = series.study
        label = person_name(study.patient_name) or study.study_instance_uid
        return format_html(
            '<a href="{}">{}</a> {}', change_url("study", study.pk), label,
            short_uid(study.study_instance_uid),
        )

    @admin.display(description="Series UID")
    def uid(self, series: Series) -> SafeString:
        return short_uid(series.series_instance_uid, change_url("series", series.pk))

    @admin.display(description="Series instance UID")
    def uid_full(self, series: Series) -> SafeString:
        return full_uid(series.series_instance_uid)

    @admin.display(description="Contents")
    def contents(self, series: Series) -> SafeString:
        return list_link("instance", f"series__id__exact={series.pk}", f"{series.num_instances} instances")

    @admin.display(description="Files")
    def tools(self, series: Series) -> SafeString:
        viewer = viewer_link(study=series.study.study_instance_uid, series=series.series_instance_uid)
        return format_html("{} {}", self.download_button(series), viewer)

    @admin.display(description="Images")
    def thumbnails(self, series: Series) -> SafeString:
        instances = instances_for_series_page(series_id=series.pk, limit=SERIES_PAGE_THUMBNAILS)
        cards = [
            {"instance": instance, "url": change_url("instance", instance.pk),
             "image": rendered_url(instance.pk, instance.watermark)}
            for instance in instances
        ]
        more = series.num_instances > len(cards)
        context = {"cards": cards, "more": more, "all_url": f"{reverse('admin:studies_instance_changelist')}"
                   f"?series__id__exact={series.pk}"}
        return SafeString(render_to_string("admin/studies/instance_cards.html", context))
