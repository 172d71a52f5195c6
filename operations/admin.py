"""Operations in the admin: status, progress, results and errors, read-only."""

from __future__ import annotations

import json
import uuid
from typing import Any

from django.contrib import admin
from django.template.loader import render_to_string
from django.utils.html import format_html
from django.utils.safestring import SafeString

from dicomsvc.admin_tools import LargeTableAdmin
from operations.models import Operation


def _pretty(value: Any) -> SafeString:
    if value in (None, {}, []):
        return SafeString("—")
    return format_html('<pre class="dicom-json">{}</pre>', json.dumps(value, indent=2, ensure_ascii=False))


def _json_field(name: str, description: str) -> Any:
    @admin.display(description=description)
    def show(admin_: Any, operation: Operation) -> SafeString:
        return _pretty(getattr(operation, name))

    return show


@admin.register(Operation)
class OperationAdmin(LargeTableAdmin):
    list_display = ("id", "type", "status", "progress", "partition", "created_time", "last_updated_time")
    list_filter = ("status", "type")
    list_select_related = ("partition",)
    ordering = ("-created_time",)
    search_help_text = "Operation ID."
    fields = (
        "id", "type", "status", "progress", "partition", "created_time", "last_updated_time",
        "parameters_json", "results_json", "errors_json", "resources_json", "checkpoint_json",
    )
    readonly_fields = (
        "progress", "parameters_json", "results_json", "errors_json", "resources_json", "checkpoint_json",
    )

    def get_search_results(self, request: Any, queryset: Any, search_term: str) -> tuple[Any, bool]:
        if not search_term.strip():
            return queryset, False
        try:
            return queryset.filter(id=uuid.UUID(search_term.strip())), False
        except ValueError:
            return queryset.none(), False

    def get_search_fields(self, request: Any) -> tuple[str, ...]:
        return ("id",)

    @admin.display(description="Progress")
    def progress(self, operation: Operation) -> SafeString:
        context = {"percent": operation.percent_complete, "status": operation.status}
        return SafeString(render_to_string("admin/operations/progress.html", context))

    parameters_json = _json_field("parameters", "Parameters")
    results_json = _json_field("results", "Results")
    errors_json = _json_field("errors", "Errors")
    resources_json = _json_field("resources", "Resources")
    checkpoint_json = _json_field("checkpoint", "Checkpoint")
