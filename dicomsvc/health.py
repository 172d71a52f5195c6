"""GET /health/check: 200 once the database answers (and blob storage is reachable)."""

from __future__ import annotations

from django.db import connection
from django.http import HttpRequest, JsonResponse

from studies.blobstore import storage


def health_check(request: HttpRequest) -> JsonResponse:
    details = []
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        details.append({"name": "database", "status": "Healthy", "description": "reachable"})
    except Exception as exc:
        details.append({"name": "database", "status": "Unhealthy", "description": str(exc)})
    try:
        storage().exists("health-probe")
        details.append({"name": "blobstorage", "status": "Healthy", "description": "reachable"})
    except Exception as exc:
        details.append({"name": "blobstorage", "status": "Unhealthy", "description": str(exc)})
    healthy = all(d["status"] == "Healthy" for d in details)
    return JsonResponse(
        {"overallStatus": "Healthy" if healthy else "Unhealthy", "details": details},
        status=200 if healthy else 503,
    )
