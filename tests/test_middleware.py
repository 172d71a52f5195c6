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
    for name in ("SessionMiddleware", "CommonMiddleware", "CsrfViewMiddleware", "AuthenticationMiddleware",
                 "MessageMiddleware", "XFrameOptionsMiddleware"):  # fmt: skip
        ours = getattr(middleware, name)
        assert ours.__mro__[2].__name__ == name and issubclass(ours, MiddlewareMixin)
    # What the pass-by relies on: MiddlewareMixin keeps get_response and is the callable.
    assert list(inspect.signature(MiddlewareMixin.__init__).parameters) == ["self", "get_response"]
    assert "self.get_response = get_response" in inspect.getsource(MiddlewareMixin.__init__)
