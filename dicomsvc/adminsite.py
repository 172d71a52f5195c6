"""The admin site: branding and a dashboard as its index (installed by dicomsvc.admin_apps)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from django.template.response import TemplateResponse

from changefeed.selectors import changefeed_queryset
from studies.selectors_partition import partition_statistics_list

DASHBOARD_FEED_ENTRIES = 20
DASHBOARD_PARTITIONS = 50


class DicomAdminSite(admin.AdminSite):
    site_header = "DICOM server administration"
    site_title = "DICOM server admin"
    index_title = "Dashboard"
    index_template = "admin/dashboard.html"

    def index(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> TemplateResponse:
        """Counts per partition and the newest change-feed entries, each shown only to
        staff who may view that data (the Operations group sees the feed, not the counts)."""
        user = request.user
        context: dict[str, Any] = {}
        if user.has_perm("partitions.view_partition"):
            stats = list(partition_statistics_list()[: DASHBOARD_PARTITIONS + 1])
            context["partition_stats"] = stats[:DASHBOARD_PARTITIONS]
            context["more_partitions"] = len(stats) > DASHBOARD_PARTITIONS
        if user.has_perm("changefeed.view_changefeedentry"):
            context["feed_entries"] = list(changefeed_queryset().order_by("-sequence")[:DASHBOARD_FEED_ENTRIES])
            context["can_view_instances"] = user.has_perm("studies.view_instance")
        return super().index(request, extra_context={**context, **(extra_context or {})})
