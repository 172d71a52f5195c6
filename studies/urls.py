"""DICOMweb resource routes, mounted under /v{n}/ and /v{n}/partitions/{name}/."""

from __future__ import annotations

from django.urls import path

from studies.views.bulkdata import BulkDataView
from studies.views.rendered import RenderedView
from studies.views.resources import InstanceView, SeriesView, StudiesView, StudyView
from studies.views.retrieve import FramesView, MetadataView
from studies.views.search import (
    InstancesSearchView,
    SeriesInstancesSearchView,
    SeriesSearchView,
    StudyInstancesSearchView,
    StudySeriesSearchView,
)
from studies.views.thumbnail import ThumbnailView
from studies.views.wado_uri import WadoUriView

STUDY = "studies/<seg:study>"
SERIES = f"{STUDY}/series/<seg:series>"
INSTANCE = f"{SERIES}/instances/<seg:instance>"

urlpatterns = [
    path("studies", StudiesView.as_view()),
    path(STUDY, StudyView.as_view()),
    path(f"{STUDY}/metadata", MetadataView.as_view()),
    path(SERIES, SeriesView.as_view()),
    path(f"{SERIES}/metadata", MetadataView.as_view()),
    path(INSTANCE, InstanceView.as_view()),
    path(f"{INSTANCE}/metadata", MetadataView.as_view()),
    path(f"{INSTANCE}/frames/<seg:frames>", FramesView.as_view()),
    path(f"{INSTANCE}/rendered", RenderedView.as_view()),
    path(f"{INSTANCE}/frames/<seg:frame>/rendered", RenderedView.as_view()),
    path(f"{INSTANCE}/bulkdata/<path:tags>", BulkDataView.as_view()),
    path(f"{STUDY}/thumbnail", ThumbnailView.as_view()),
    path(f"{SERIES}/thumbnail", ThumbnailView.as_view()),
    path(f"{INSTANCE}/thumbnail", ThumbnailView.as_view()),
    # QIDO-RS (GET studies is StudiesView's).
    path("series", SeriesSearchView.as_view()),
    path("instances", InstancesSearchView.as_view()),
    path(f"{STUDY}/series", StudySeriesSearchView.as_view()),
    path(f"{STUDY}/instances", StudyInstancesSearchView.as_view()),
    path(f"{SERIES}/instances", SeriesInstancesSearchView.as_view()),
    # WADO-URI (PS3.18 §9.1)
    path("wado", WadoUriView.as_view()),
]
