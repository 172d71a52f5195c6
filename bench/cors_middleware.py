"""CPU per request of django-cors-headers' CorsMiddleware, off and on (docs/benchmarks.md, "Issue #19").

    PYTHONPATH=. DICOM_DATA_DIR=/tmp/bench-cors .venv/bin/python bench/cors_middleware.py

The view is a function returning one prepared response, so the numbers are the middleware's alone.
"""

from __future__ import annotations

import os
import time

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dicomsvc.settings")

import django  # noqa: E402

django.setup()

from corsheaders.middleware import CorsMiddleware  # noqa: E402
from django.conf import settings  # noqa: E402
from django.http import HttpResponse  # noqa: E402
from django.test import RequestFactory  # noqa: E402

REQUESTS = 20_000


def per_request(headers: dict[str, str]) -> float:
    """Microseconds per request, fresh requests and responses, as the server sees them."""
    middleware = CorsMiddleware(lambda request: HttpResponse())
    requests = [RequestFactory().get("/v2/studies", **headers) for _ in range(REQUESTS)]
    start = time.perf_counter()
    for request in requests:
        middleware(request)
    return (time.perf_counter() - start) / REQUESTS * 1e6


def main() -> None:
    bare = RequestFactory()
    requests = [bare.get("/v2/studies") for _ in range(REQUESTS)]
    start = time.perf_counter()
    for _request in requests:
        HttpResponse()
    baseline = (time.perf_counter() - start) / REQUESTS * 1e6
    settings.CORS_URLS_REGEX = "(?!)"
    off = per_request({})
    settings.CORS_URLS_REGEX = settings.CORS_API_PATHS
    settings.CORS_ALLOWED_ORIGINS = ["http://127.0.0.1:3000"]
    on = per_request({})
    allowed = per_request({"HTTP_ORIGIN": "http://127.0.0.1:3000"})
    print(f"HttpResponse() alone        {baseline:6.1f} us")
    print(f"CORS off (setting empty)    {off - baseline:6.1f} us more")
    print(f"CORS on, no Origin header   {on - baseline:6.1f} us more")
    print(f"CORS on, an allowed Origin  {allowed - baseline:6.1f} us more")


if __name__ == "__main__":
    main()
