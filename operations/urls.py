from __future__ import annotations

from django.urls import path

from operations.views import OperationView

urlpatterns = [path("operations/<seg:operation_id>", OperationView.as_view())]
