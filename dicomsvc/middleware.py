"""The admin console's middleware, left out of the DICOMweb API.

Sessions, authentication, CSRF, messages, clickjacking protection and CommonMiddleware serve
the admin console and its static files (`settings.BROWSER_PATH_PREFIXES`) only. The API needs
none of them, and its responses carry none of their headers (`X-Frame-Options`, `Set-Cookie`,
`Vary: Cookie`, CommonMiddleware's `Content-Length`). Each class below is Django's middleware
of the same name, called for browser paths and passed by for every other path.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth.middleware import AuthenticationMiddleware as _AuthenticationMiddleware
from django.contrib.messages.middleware import MessageMiddleware as _MessageMiddleware
from django.contrib.sessions.middleware import SessionMiddleware as _SessionMiddleware
from django.http import HttpRequest
from django.middleware.clickjacking import XFrameOptionsMiddleware as _XFrameOptionsMiddleware
from django.middleware.common import CommonMiddleware as _CommonMiddleware
from django.middleware.csrf import CsrfViewMiddleware as _CsrfViewMiddleware


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


class CsrfViewMiddleware(_BrowserOnly, _CsrfViewMiddleware):
    def process_view(self, request: HttpRequest, callback: Any, callback_args: Any, callback_kwargs: Any) -> Any:
        if not is_browser_request(request):
            return None
        return super().process_view(request, callback, callback_args, callback_kwargs)


class AuthenticationMiddleware(_BrowserOnly, _AuthenticationMiddleware):
    pass


class MessageMiddleware(_BrowserOnly, _MessageMiddleware):
    pass


class XFrameOptionsMiddleware(_BrowserOnly, _XFrameOptionsMiddleware):
    pass
