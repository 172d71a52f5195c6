"""Middleware of the DICOMweb API, which runs without the browser middleware of the admin.

Under ASGI each synchronous Django middleware costs two thread hops per request. The API
uses none of the browser middleware (no cookies or sessions, DRF views are CSRF-exempt), so
`dicomsvc.asgi` serves it through a handler built from `API_MIDDLEWARE` only; the admin
console keeps the full `MIDDLEWARE`.
"""

from __future__ import annotations

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.http import HttpRequest, HttpResponseBase
from django.middleware.security import SecurityMiddleware


class ApiSecurityMiddleware(SecurityMiddleware):
    """Django's SecurityMiddleware (nosniff, HSTS, SSL redirect...) without thread hops.

    Its two hooks only read settings and headers, so they can run on the event loop.
    """

    def __init__(self, get_response):  # noqa: ANN001
        super().__init__(get_response)
        if iscoroutinefunction(get_response):
            markcoroutinefunction(self)

    async def __acall__(self, request: HttpRequest) -> HttpResponseBase:
        response = self.process_request(request)
        if response is None:
            response = await self.get_response(request)
        return self.process_response(request, response)
