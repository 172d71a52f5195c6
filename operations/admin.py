"""Operations in the admin: status, "failed at N %", duration, errors inline, parameters readable.

A running operation's page reloads itself (`change_form.html` of this model), so staff watch
it progress without pressing anything. Change-feed `update` entries link here through
`for-change/<sequence>/`, which finds the bulk update that wrote the entry.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from typing import Any

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.loader import render_to_string
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from pydicom.datadict import keyword_for_tag

from changefeed.models import ChangeFeedEntry
from dicomsvc.admin_tools import LargeTableAdmin
from operations.models import ACTIVE_STATUSES, Operation, OperationStatus
from operations.selectors import (
    operation_error_lines,
    operation_failure_reason,
    operation_for_change,
    operation_study_links,
)

# Seconds between reloads of a running operation's page.
REFRESH_SECONDS = 5


def _pretty(value: Any) -> SafeString:
    if value in (None, {}, []):
        return SafeString("—")
    return format_html('<pre class="dicom-json">{}</pre>', json.dumps(value, indent=2, ensure_ascii=False))


def _json_field(name: str, description: str) -> Any:
    @admin.display(description=description)
    def show(admin_: Any, operation: Operation) -> SafeString:
        return _pretty(getattr(operation, name))

    return show


def duration_text(seconds: float) -> str:
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    return f"{minutes} min {seconds:02d} s" if minutes else f"{seconds} s"


def operation_duration(operation: Operation) -> dt.timedelta:
    end = timezone.now() if operation.status in ACTIVE_STATUSES else operation.last_updated_time
    return end - operation.created_time


def _tag_keyword(key: str) -> str:
    try:
        return keyword_for_tag(int(key, 16)) or "(unknown)"
    except ValueError:
        return key


def _study_links(uids: list[str], links: dict[str, int]) -> SafeString:
    def item(uid: str) -> SafeString:
        if uid in links:
            url = reverse("admin:studies_study_change", args=[links[uid]])
            return format_html('<li><a class="uid" href="{}">{}</a></li>', url, uid)
        return format_html('<li class="uid">{} <span class="quiet">(not stored)</span></li>', uid)

    return format_html("<ul>{}</ul>", SafeString("".join(item(uid) for uid in uids)))


@admin.register(Operation)
class OperationAdmin(LargeTableAdmin):
    list_display = ("operation_id", "type", "status", "progress", "partition", "created_time", "duration", "reason")
    list_display_links = None
    list_filter = ("status", "type")
    list_select_related = ("partition",)
    ordering = ("-created_time",)
    search_help_text = "Operation ID."
    change_form_template = "admin/operations/operation/change_form.html"
    fields = (
        "id", "type", "status", "progress", "partition", "created_time", "last_updated_time", "duration",
        "error_list", "parameters_view", "results_json", "resources_json", "checkpoint_json",
    )
    readonly_fields = (
        "progress", "duration", "error_list", "parameters_view", "results_json", "resources_json", "checkpoint_json",
    )

    def get_urls(self) -> list[Any]:
        view = self.admin_site.admin_view(self.for_change_view)
        return [path("for-change/<int:sequence>/", view, name="operations_operation_for_change"), *super().get_urls()]

    def for_change_view(self, request: HttpRequest, sequence: int) -> HttpResponse:
        """The page of the bulk update that wrote change-feed entry `sequence`."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        entry = ChangeFeedEntry.objects.filter(pk=sequence).first()
        if entry is None:
            raise Http404("No such change-feed entry.")
        operation = operation_for_change(
            partition_id=entry.partition_id, study_uid=entry.study_instance_uid, timestamp=entry.timestamp
        )
        if operation is None:
            raise Http404("No bulk update wrote this entry (it may have been removed).")
        return HttpResponseRedirect(reverse("admin:operations_operation_change", args=[operation.pk]))

    def change_view(self, request: HttpRequest, object_id: str, form_url: str = "",
                    extra_context: dict[str, Any] | None = None) -> HttpResponse:
        operation = Operation.objects.filter(pk=object_id).only("status").first() if _is_uuid(object_id) else None
        running = operation is not None and operation.status in ACTIVE_STATUSES
        context = {**(extra_context or {}), "refresh_seconds": REFRESH_SECONDS if running else None}
        return super().change_view(request, object_id, form_url, extra_context=context)

    def get_search_results(self, request: Any, queryset: Any, search_term: str) -> tuple[Any, bool]:
        if not search_term.strip():
            return queryset, False
        try:
            return queryset.filter(id=uuid.UUID(search_term.strip())), False
        except ValueError:
            return queryset.none(), False

    def get_search_fields(self, request: Any) -> tuple[str, ...]:
        return ("id",)

    @admin.display(description="ID")
    def operation_id(self, operation: Operation) -> SafeString:
        url = reverse("admin:operations_operation_change", args=[operation.pk])
        return format_html('<a class="uid" href="{}" title="{}">{}…</a>', url, operation.pk, operation.pk.hex[:8])

    @admin.display(description="Progress")
    def progress(self, operation: Operation) -> SafeString:
        context = {"percent": operation.percent_complete, "status": operation.status}
        return SafeString(render_to_string("admin/operations/progress.html", context))

    @admin.display(description="Duration")
    def duration(self, operation: Operation) -> str:
        text = duration_text(operation_duration(operation).total_seconds())
        return f"{text} so far" if operation.status in ACTIVE_STATUSES else text

    @admin.display(description="Why it failed")
    def reason(self, operation: Operation) -> str:
        if operation.status != OperationStatus.FAILED:
            return ""
        first = operation_failure_reason(operation=operation) or "—"
        return first if len(first) <= 120 else first[:119] + "…"

    @admin.display(description="Errors")
    def error_list(self, operation: Operation) -> SafeString:
        lines = operation_error_lines(operation=operation)
        if not lines:
            return SafeString("—")
        items = format_html_join("", "<li>{}</li>", ((line,) for line in lines))
        return format_html('<ul class="operation-errors">{}</ul>', items)

    @admin.display(description="Parameters")
    def parameters_view(self, operation: Operation) -> SafeString:
        parameters: dict[str, Any] = dict(operation.parameters or {})
        links = operation_study_links(operation=operation)
        parts = []
        uids = parameters.pop("studyInstanceUids", None)
        if uids is not None:
            parts.append(format_html("<h4>Studies</h4>{}", _study_links([str(uid) for uid in uids], links)))
        change = parameters.pop("changeDataset", None)
        if isinstance(change, dict):
            rows = format_html_join(
                "", '<tr><td class="uid">{}</td><td>{}</td><td>{}</td></tr>',
                ((key, _tag_keyword(key), json.dumps(value.get("Value", ""), ensure_ascii=False)
                  if isinstance(value, dict) else value) for key, value in sorted(change.items())),
            )
            parts.append(format_html(
                "<h4>Changes</h4><table><thead><tr><th>Tag</th><th>Keyword</th><th>New value</th></tr></thead>"
                "<tbody>{}</tbody></table>", rows,
            ))
        identifiers = parameters.pop("identifiers", None)
        if identifiers is not None:
            studies = [str(identifier).split("/")[0] for identifier in identifiers]
            parts.append(format_html(
                "<h4>Exported</h4><ul>{}</ul>",
                SafeString("".join(
                    format_html('<li><a class="uid" href="{}">{}</a></li>',
                                reverse("admin:studies_study_change", args=[links[study]]), identifier)
                    if study in links else format_html('<li class="uid">{}</li>', identifier)
                    for identifier, study in zip(identifiers, studies, strict=True)
                )),
            ))
        if parameters:
            parts.append(_pretty(parameters))
        return SafeString("".join(parts)) if parts else SafeString("—")

    results_json = _json_field("results", "Results")
    resources_json = _json_field("resources", "Resources")
    checkpoint_json = _json_field("checkpoint", "Checkpoint")


def _is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True
