from __future__ import annotations

from django.urls import path

from changefeed.views import ChangeFeedLatestView, ChangeFeedView

urlpatterns = [
    path("changefeed", ChangeFeedView.as_view()),
    path("changefeed/latest", ChangeFeedLatestView.as_view()),
]
