"""Middleware: Django's security headers for every response; the admin console's own for the admin only.

Sessions, authentication, messages, clickjacking protection and CommonMiddleware serve the
admin console and its static files (`settings.BROWSER_PATH_PREFIXES`) only. The API needs none
of them, and its responses carry none of their headers (`X-Frame-Options`, `Set-Cookie`,
`Vary: Cookie`, CommonMiddleware's `Content-Length`). Each class below is Django's middleware
of the same name, called for browser paths and passed by for every other path. CSRF is not
middleware here: the admin's views carry Django's `csrf_protect` themselves, and the API
authenticates no browser session.

Under ASGI, Django runs a `MiddlewareMixin` middleware's `process_request` and
`process_response` on a worker thread each, and each `process_view` of a view middleware on
another: thread hops per API request for work that only reads settings and sets headers.
`security_middleware` calls SecurityMiddleware's two hooks where the request already is.
"""

from __future__ import annotations

from typing import Any

from asgiref.sync import iscoroutinefunction
from django.conf import settings
from django.contrib.auth.middleware import AuthenticationMiddleware as _AuthenticationMiddleware
from django.contrib.messages.middleware import MessageMiddleware as _MessageMiddleware
from django.contrib.sessions.middleware import SessionMiddleware as _SessionMiddleware
from django.http import HttpRequest
from django.middleware.clickjacking import XFrameOptionsMiddleware as _XFrameOptionsMiddleware
from django.middleware.common import CommonMiddleware as _CommonMiddleware
from django.middleware.security import SecurityMiddleware
from django.utils.decorators import sync_and_async_middleware

from dicomsvc.audit import AuditTrail, is_audited


def is_browser_request(request: HttpRequest) -> bool:
    return request.path.startswith(settings.BROWSER_PATH_PREFIXES)


class _BrowserOnly:
    """A middleware (the class it is mixed into) that passes API requests straight on.

    In Django's async mode `get_response` returns an awaitable, which is returned as it is."""

    get_response: Any

    def __call__(self, request: HttpRequest) -> Any:
        if is_browser_request(request):
            return super().__call__(request)  # type: ignore[misc]
        return self.get_response(request)


class SessionMiddleware(_BrowserOnly, _SessionMiddleware):
    pass


class CommonMiddleware(_BrowserOnly, _CommonMiddleware):
    pass


class AuthenticationMiddleware(_BrowserOnly, _AuthenticationMiddleware):
    pass


class MessageMiddleware(_BrowserOnly, _MessageMiddleware):
    pass


class XFrameOptionsMiddleware(_BrowserOnly, _XFrameOptionsMiddleware):
    pass


@sync_and_async_middleware
def security_middleware(get_response: Any) -> Any:
    """Django's SecurityMiddleware through its public hooks, without a thread hop for either.

    Both hooks only read settings and the request and set response headers (or answer a
    redirect to HTTPS), so they run in the calling context, on the event loop under ASGI.
    """
    security = SecurityMiddleware(get_response)

    if iscoroutinefunction(get_response):

        async def middleware_async(request: HttpRequest) -> Any:
            response = security.process_request(request)
            if response is None:
                response = await get_response(request)
            return security.process_response(request, response)

        return middleware_async

    def middleware(request: HttpRequest) -> Any:
        response = security.process_request(request) or get_response(request)
        return security.process_response(request, response)

    return middleware


@sync_and_async_middleware
def audit_middleware(get_response: Any) -> Any:
    """One audit line per API request once its response is ready (`dicomsvc.audit`), and the
    request's correlation id in `X-Request-Id`. Runs where the request is, like the above."""

    if iscoroutinefunction(get_response):

        async def middleware_async(request: HttpRequest) -> Any:
            if not is_audited(request):
                return await get_response(request)
            trail = AuditTrail(request)
            response = await get_response(request)
            trail.finish(response)
            return response

        return middleware_async

    def middleware(request: HttpRequest) -> Any:
        if not is_audited(request):
            return get_response(request)
        trail = AuditTrail(request)
        response = get_response(request)
        trail.finish(response)
        return response

    return middleware
