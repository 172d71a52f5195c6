"""Extended query tag routes, mounted at /v{n}/ only (tags are global, never per partition)."""

from __future__ import annotations

from django.urls import path

from operations.reindex.views import ExtendedQueryTagErrorsView, ExtendedQueryTagsView, ExtendedQueryTagView

urlpatterns = [
    path("extendedquerytags", ExtendedQueryTagsView.as_view()),
    path("extendedquerytags/<seg:path>", ExtendedQueryTagView.as_view()),
    path("extendedquerytags/<seg:path>/errors", ExtendedQueryTagErrorsView.as_view()),
]
