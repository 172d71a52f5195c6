"""The admin site: branding and a dashboard as its index (installed by dicomsvc.admin_apps)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from django.template.response import TemplateResponse

from changefeed.selectors import changefeed_queryset
from operations.selectors import operations_active_list, operations_failed_recently_list
from studies.selectors_partition import partition_statistics_list

DASHBOARD_FEED_ENTRIES = 20
DASHBOARD_PARTITIONS = 50
DASHBOARD_OPERATIONS = 20
# Failed operations stay on the dashboard this long.
DASHBOARD_FAILED_WITHIN = dt.timedelta(days=7)


class DicomAdminSite(admin.AdminSite):
    site_header = "DICOM server administration"
    site_title = "DICOM server admin"
    index_title = "Dashboard"
    index_template = "admin/dashboard.html"
    # The server has no web site of its own to view: the link would lead to a 404.
    site_url = None

    def index(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> TemplateResponse:
        """Counts per partition, running and recently failed operations and the newest
        change-feed entries, each shown only to staff who may view that data (the
        Operations group sees operations and the feed, not the counts)."""
        user = request.user
        context: dict[str, Any] = {}
        if user.has_perm("partitions.view_partition"):
            stats = list(partition_statistics_list()[: DASHBOARD_PARTITIONS + 1])
            context["partition_stats"] = stats[:DASHBOARD_PARTITIONS]
            context["more_partitions"] = len(stats) > DASHBOARD_PARTITIONS
        if user.has_perm("operations.view_operation"):
            context["running_operations"] = operations_active_list(limit=DASHBOARD_OPERATIONS)
            context["failed_operations"] = operations_failed_recently_list(
                within=DASHBOARD_FAILED_WITHIN, limit=DASHBOARD_OPERATIONS
            )
        if user.has_perm("changefeed.view_changefeedentry"):
            context["feed_entries"] = list(changefeed_queryset().order_by("-sequence")[:DASHBOARD_FEED_ENTRIES])
            context["can_view_instances"] = user.has_perm("studies.view_instance")
            context["can_view_operations"] = user.has_perm("operations.view_operation")
        return super().index(request, extra_context={**context, **(extra_context or {})})
