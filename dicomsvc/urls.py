"""Root routes: admin, health, and the DICOMweb API under /v{n}/ (and /v{n}/partitions/{name}/)."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.staticfiles.views import serve as static_serve
from django.urls import URLPattern, URLResolver, include, path, re_path, register_converter

from dicomsvc.api.converters import ApiVersionConverter, SegmentConverter
from dicomsvc.api.openapi import OpenApiView
from dicomsvc.health import health_check

register_converter(ApiVersionConverter, "ver")
register_converter(SegmentConverter, "seg")

# Resources that live in a partition: served at /v{n}/... and /v{n}/partitions/{name}/...
partitioned = [
    # Before studies.urls, whose `studies/<study>` would take `studies/$bulkUpdate`.
    path("", include("operations.update.urls")),
    path("", include("studies.urls")),
    path("", include("operations.export.urls")),
    path("", include("studies.workitems.urls")),
]
# Resources at the base URI only.
global_routes: list[URLPattern | URLResolver] = [
    path("", include("partitions.urls")),
    path("", include("operations.urls")),
    path("", include("changefeed.urls")),
    path("api.json", OpenApiView.as_view(document_format="json")),
    path("api.yaml", OpenApiView.as_view(document_format="yaml")),
    path("", include("operations.reindex.urls")),
]

# Django tries the routes in order on every request: the DICOMweb ones first, the most
# requested (studies, series, instances) first among them. No two lists share a first segment.
urlpatterns = [
    path("v<ver:version>/partitions/<seg:partition_name>/", include(partitioned)),
    path("v<ver:version>/", include([*partitioned, *global_routes])),
    path("admin/", admin.site.urls),
    # The admin's own CSS/JS (a few small files), so `make run` needs no web server beside
    # it; a reverse proxy may serve STATIC_ROOT (`manage.py collectstatic`) at /static/ instead.
    re_path(r"^static/(?P<path>.*)$", static_serve, {"insecure": True}),
    path("health/check", health_check),
]

handler404 = "dicomsvc.api.errors.not_found_view"
