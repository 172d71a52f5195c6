"""dicomsvc.middleware: the admin console's middleware runs for the admin only, never for the API."""

from __future__ import annotations

import inspect

import pytest
from django.test import Client
from django.utils.deprecation import MiddlewareMixin

from dicomsvc import middleware


@pytest.mark.django_db
def test_api_responses_carry_no_browser_middleware_headers(settings):
    settings.DICOM_ENABLE_DATA_PARTITIONS = False
    client = Client(enforce_csrf_checks=True)
    for response in (
        client.get("/v2/studies", HTTP_ACCEPT="application/dicom+json"),
        client.get("/v2/partitions", HTTP_ACCEPT="application/json"),  # 400, a complete body
        client.post("/health/check"),  # not refused for a missing CSRF token
    ):
        assert response.status_code in (204, 400, 200)
        assert response.headers["X-Content-Type-Options"] == "nosniff"  # SecurityMiddleware runs
        assert "X-Frame-Options" not in response.headers
        assert "Content-Length" not in response.headers  # CommonMiddleware's; the server frames it
        assert not response.cookies and "Cookie" not in response.headers.get("Vary", "")
        assert not hasattr(response.wsgi_request, "session")


@pytest.mark.django_db
def test_the_admin_keeps_every_middleware():
    client = Client(enforce_csrf_checks=True)
    response = client.get("/admin/login/")
    assert response.status_code == 200 and b"csrfmiddlewaretoken" in response.content
    assert response.headers["X-Frame-Options"] == "DENY"
    assert "csrftoken" in response.cookies
    assert "Content-Length" in response.headers
    assert client.post("/admin/login/", {"username": "x", "password": "y"}).status_code == 403  # CSRF enforced


def test_each_class_is_djangos_middleware():
    # Django's admin checks (admin.E408-E410) look for these classes or subclasses in MIDDLEWARE.
    for name in ("SessionMiddleware", "CommonMiddleware", "AuthenticationMiddleware",
                 "MessageMiddleware", "XFrameOptionsMiddleware"):  # fmt: skip
        ours = getattr(middleware, name)
        assert ours.__mro__[2].__name__ == name and issubclass(ours, MiddlewareMixin)
    # What the pass-by relies on: MiddlewareMixin keeps get_response and is the callable.
    assert list(inspect.signature(MiddlewareMixin.__init__).parameters) == ["self", "get_response"]
    assert "self.get_response = get_response" in inspect.getsource(MiddlewareMixin.__init__)


def test_api_middleware_runs_on_the_event_loop(settings, monkeypatch):
    """Under ASGI the security headers are set on the event loop's thread: no worker-thread hop
    for SecurityMiddleware's hooks (Django's MiddlewareMixin would take one for each)."""
    import asyncio
    import threading

    from django.core.handlers.asgi import ASGIHandler
    from django.middleware.security import SecurityMiddleware
    from django.test import RequestFactory

    settings.DICOM_ENABLE_DATA_PARTITIONS = False
    threads: dict[str, int] = {}
    for hook in ("process_request", "process_response"):
        original = getattr(SecurityMiddleware, hook)

        def recorded(self, *args, _hook=hook, _original=original):  # noqa: ANN001, ANN202
            threads[_hook] = threading.get_ident()
            return _original(self, *args)

        monkeypatch.setattr(SecurityMiddleware, hook, recorded)
    handler = ASGIHandler()

    async def scenario() -> int:
        threads["loop"] = threading.get_ident()
        request = RequestFactory().get("/v2/partitions", HTTP_ACCEPT="application/json")
        return (await handler.get_response_async(request)).status_code

    assert asyncio.run(scenario()) == 400
    assert threads["process_request"] == threads["process_response"] == threads["loop"]


def test_security_middleware_sets_djangos_headers_on_api_and_admin(client):
    for response in (client.get("/v2/partitions"), client.get("/admin/login/")):
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Referrer-Policy"] == "same-origin"
        assert response.headers["Cross-Origin-Opener-Policy"] == "same-origin"
