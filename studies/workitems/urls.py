"""UPS-RS routes, mounted under /v{n}/ and /v{n}/partitions/{name}/."""

from __future__ import annotations

from django.urls import path

from studies.workitems.views import WorkitemCancelRequestView, WorkitemStateView, WorkitemsView, WorkitemView

WORKITEM = "workitems/<seg:workitem>"

urlpatterns = [
    path("workitems", WorkitemsView.as_view()),
    path(WORKITEM, WorkitemView.as_view()),
    path(f"{WORKITEM}/state", WorkitemStateView.as_view()),
    path(f"{WORKITEM}/cancelrequest", WorkitemCancelRequestView.as_view()),
]
