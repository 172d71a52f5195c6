from __future__ import annotations

from django.urls import path

from partitions.views import PartitionListView

urlpatterns = [path("partitions", PartitionListView.as_view())]
