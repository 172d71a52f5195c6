"""Export route, mounted under /v{n}/ and /v{n}/partitions/{name}/."""

from __future__ import annotations

from django.urls import path

from operations.export.views import ExportView

urlpatterns = [path("export", ExportView.as_view())]
