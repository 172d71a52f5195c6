"""Bulk update route, mounted under /v{n}/ and /v{n}/partitions/{name}/ before the studies
routes, whose `studies/<study>` would take `$bulkUpdate` for a study UID."""

from __future__ import annotations

from django.urls import path

from operations.update.views import BulkUpdateView

urlpatterns = [path("studies/$bulkUpdate", BulkUpdateView.as_view())]
