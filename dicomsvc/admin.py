"""Admin pages that join apps, registered here, above them all.

Partitions: read-only (partitions are created by STOW, never renamed or deleted), listed
with the studies, instances and bytes each holds. Extended query tags: with the progress of
the reindex operation that makes each ready, and their errors.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.admin.models import LogEntry
from django.contrib.contenttypes.models import ContentType
from django.db.models import OuterRef, QuerySet, Subquery
from django.http import HttpRequest, HttpResponse
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString
from pydicom.datadict import keyword_for_tag

from dicomsvc.admin_tools import LargeTableAdmin, ListErrorsAdmin, ReadOnlyAdmin
from operations.models import Operation
from partitions.models import Partition
from studies.admin import filesize, list_link
from studies.eqt.models import ExtendedQueryTag, ExtendedQueryTagError, QueryStatus
from studies.eqt.services import tag_query_status_set
from studies.selectors_partition import partition_statistics_list


@admin.register(Partition)
class PartitionAdmin(ReadOnlyAdmin):
    list_display = ("partition_key", "partition_name", "created_date", "studies", "instances", "stored_size")
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    search_fields = ("partition_name",)
    fields = ("partition_key", "partition_name", "created_date", "studies", "instances", "stored_size")
    readonly_fields = ("studies", "instances", "stored_size")

    def get_queryset(self, request: HttpRequest) -> QuerySet[Partition]:
        return partition_statistics_list()

    @admin.display(description="Studies")
    def studies(self, partition: Any) -> SafeString:
        return list_link("study", f"partition__partition_key__exact={partition.pk}", str(partition.num_studies))

    @admin.display(description="Instances")
    def instances(self, partition: Any) -> SafeString:
        return list_link("instance", f"partition__partition_key__exact={partition.pk}", str(partition.num_instances))

    @admin.display(description="Stored size")
    def stored_size(self, partition: Any) -> str:
        return filesize(partition.stored_bytes)


# --- Extended query tags: the tag (studies) with its reindex's progress (operations) ---------


@admin.register(ExtendedQueryTag)
class ExtendedQueryTagAdmin(ListErrorsAdmin):
    """Tags are added and deleted through the API; here they are watched, and searching on one is
    enabled or disabled (the service PATCH calls)."""

    list_display = ("path", "keyword", "vr", "private_creator", "level", "status", "query_status", "errors",
                    "reindex")  # fmt: skip
    list_filter = ("status", "query_status", "level")
    actions = ("enable_searching", "disable_searching")
    fields = ("path", "keyword", "vr", "private_creator", "level", "status", "query_status", "errors", "reindex",
              "created_time")  # fmt: skip
    readonly_fields = ("path", "keyword", "vr", "private_creator", "level", "status", "errors", "reindex",
                       "created_time")  # fmt: skip

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_queryset(self, request: HttpRequest) -> QuerySet[ExtendedQueryTag]:
        # The reindex's progress, in the list's one query (an operation is not a foreign key of studies).
        operation = Operation.objects.filter(pk=OuterRef("operation_id"))
        tags: QuerySet[ExtendedQueryTag] = super().get_queryset(request)
        return tags.annotate(
            reindex_percent=Subquery(operation.values("percent_complete")[:1]),
            reindex_status=Subquery(operation.values("status")[:1]),
        )

    def save_model(self, request: HttpRequest, obj: ExtendedQueryTag, form: Any, change: bool) -> None:
        tag_query_status_set(path=obj.path, query_status=QueryStatus(obj.query_status))

    def change_view(self, request: HttpRequest, object_id: str, form_url: str = "",
                    extra_context: dict[str, Any] | None = None) -> HttpResponse:
        # Tags are added and indexed through the API, which writes no admin history: the
        # History button shows only once the admin changed the tag (`change_form.html`).
        content_type = ContentType.objects.get_for_model(self.model)
        has_history = LogEntry.objects.filter(content_type=content_type, object_id=object_id).exists()
        context = {**(extra_context or {}), "has_history": has_history}
        return super().change_view(request, object_id, form_url, extra_context=context)

    @admin.display(description="Keyword")
    def keyword(self, tag: ExtendedQueryTag) -> str:
        return keyword_for_tag(int(tag.path, 16)) or "—"

    @admin.display(description="Errors", ordering="error_count")
    def errors(self, tag: ExtendedQueryTag) -> SafeString:
        if not tag.error_count:
            return SafeString("0")
        url = reverse("admin:studies_extendedquerytagerror_changelist")
        return format_html('<a href="{}?tag__id__exact={}">{}</a>', url, tag.pk, tag.error_count)

    @admin.display(description="Reindex")
    def reindex(self, tag: Any) -> SafeString:
        if tag.reindex_status is None:
            return SafeString("—")
        context = {"percent": tag.reindex_percent, "status": tag.reindex_status}
        bar = SafeString(render_to_string("admin/operations/progress.html", context))
        url = reverse("admin:operations_operation_change", args=[tag.operation_id])
        return format_html('<a href="{}">{}</a>', url, bar)

    def _query_status_set(
        self, request: HttpRequest, queryset: QuerySet[ExtendedQueryTag], status: QueryStatus
    ) -> None:
        for tag in queryset:
            tag_query_status_set(path=tag.path, query_status=status)
            self.log_change(request, tag, f"Searching {status}.")
        self.message_user(request, f"Searching {status} on {len(queryset)} tag(s).")

    @admin.action(description="Enable searching on the selected tags", permissions=["change"])
    def enable_searching(self, request: HttpRequest, queryset: QuerySet[ExtendedQueryTag]) -> None:
        self._query_status_set(request, queryset, QueryStatus.ENABLED)

    @admin.action(description="Disable searching on the selected tags", permissions=["change"])
    def disable_searching(self, request: HttpRequest, queryset: QuerySet[ExtendedQueryTag]) -> None:
        self._query_status_set(request, queryset, QueryStatus.DISABLED)


@admin.register(ExtendedQueryTagError)
class ExtendedQueryTagErrorAdmin(LargeTableAdmin):
    """The instances a reindex could not index a tag's value of."""

    list_display = ("tag", "instance_link", "message", "created_time")
    list_filter = ("tag",)
    list_select_related = ("tag", "instance")
    fields = ("tag", "instance_link", "message", "created_time")
    readonly_fields = fields
    ordering = ("-pk",)

    def get_search_fields(self, request: HttpRequest) -> tuple[str, ...]:
        return ()

    @admin.display(description="Instance")
    def instance_link(self, error: ExtendedQueryTagError) -> SafeString:
        url = reverse("admin:studies_instance_change", args=[error.instance_id])
        return format_html('<a href="{}">{}</a>', url, error.instance.sop_instance_uid)
