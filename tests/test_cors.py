"""CORS for browser viewers on another origin (DICOM_CORS_ALLOWED_ORIGINS): API routes only, never the admin."""

from __future__ import annotations

import asyncio
import importlib
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from corsheaders.middleware import CorsMiddleware
from django.core.handlers.asgi import ASGIHandler
from django.test import RequestFactory
from django.utils.deprecation import MiddlewareMixin
from rest_framework.exceptions import NotAuthenticated
from rest_framework.views import APIView

from dicomsvc.env import SettingError, env_origins
from tests.helpers import bearer, dicom_bytes, instance_url, store, stow

pytestmark = pytest.mark.django_db

VIEWER = "http://127.0.0.1:3000"
STRANGER = "https://evil.example"


CORS_MIDDLEWARE = "corsheaders.middleware.CorsMiddleware"


def cors_on(settings, *, allowed: list[str]) -> None:  # noqa: ANN001
    """What DICOM_CORS_ALLOWED_ORIGINS sets when it is not empty (`*`: any origin)."""
    settings.CORS_ALLOWED_ORIGINS = [origin for origin in allowed if origin != "*"]
    settings.CORS_ALLOW_ALL_ORIGINS = "*" in allowed
    settings.CORS_URLS_REGEX = settings.CORS_API_PATHS
    settings.MIDDLEWARE = [CORS_MIDDLEWARE, *settings.MIDDLEWARE]


@pytest.fixture
def cors(settings) -> None:  # noqa: ANN001
    """What DICOM_CORS_ALLOWED_ORIGINS=http://127.0.0.1:3000 sets."""
    cors_on(settings, allowed=[VIEWER])


def preflight(client, url: str, origin: str = VIEWER, method: str = "POST"):  # noqa: ANN001, ANN201
    return client.options(
        url,
        HTTP_ORIGIN=origin,
        HTTP_ACCESS_CONTROL_REQUEST_METHOD=method,
        HTTP_ACCESS_CONTROL_REQUEST_HEADERS="authorization, content-type, accept, x-ms-azuredicom-audit-reason",
    )


def test_an_allowed_origin_may_read_every_dicomweb_answer(client, cors):
    data = dicom_bytes()
    store(data)
    for url in (f"{instance_url(data)}/metadata", "/v2/studies", "/v2/studies/1.2.3/metadata", "/v2/changefeed"):
        response = client.get(url, HTTP_ORIGIN=VIEWER)
        assert response["Access-Control-Allow-Origin"] == VIEWER, url
        assert response["Access-Control-Expose-Headers"] == (
            "Warning, Location, Content-Location, ETag, Content-Type, Content-Range"
        )
        assert "origin" in response["Vary"].lower()
    assert response.status_code == 200  # the change feed; a 404 above carried the headers too


def test_a_stow_answer_is_readable_cross_origin(client, cors):
    response = stow(client, [dicom_bytes()], HTTP_ORIGIN=VIEWER)
    assert (response.status_code, response["Access-Control-Allow-Origin"]) == (200, VIEWER)


def test_another_origin_gets_no_cors_headers(client, cors):
    response = client.get("/v2/studies", HTTP_ORIGIN=STRANGER)
    assert response.status_code == 204
    assert not [name for name in response.headers if name.lower().startswith("access-control-")]
    refused = preflight(client, "/v2/studies", origin=STRANGER)
    assert not [name for name in refused.headers if name.lower().startswith("access-control-")]


def test_preflight_lists_methods_headers_and_max_age(client, cors):
    response = preflight(client, "/v2/partitions/alice/studies")
    assert (response.status_code, response.content) == (200, b"")
    assert response["Access-Control-Allow-Origin"] == VIEWER
    assert response["Access-Control-Allow-Methods"] == "GET, POST, PUT, DELETE, PATCH, OPTIONS"
    allowed = [name.strip() for name in response["Access-Control-Allow-Headers"].split(",")]
    for name in ("accept", "authorization", "content-type", "msdicom-request-original", "if-none-match", "*"):
        assert name in allowed
    assert response["Access-Control-Max-Age"] == "86400"


def test_any_origin_with_a_star(client, settings):
    cors_on(settings, allowed=["*"])
    response = client.get("/v2/studies", HTTP_ORIGIN=STRANGER)
    assert response["Access-Control-Allow-Origin"] == "*"
    assert "Access-Control-Allow-Credentials" not in response


def test_off_by_default(client, settings):
    assert settings.DICOM_CORS_ALLOWED_ORIGINS == [] and settings.CORS_ALLOWED_ORIGINS == []
    assert not settings.CORS_ALLOW_ALL_ORIGINS
    assert CORS_MIDDLEWARE not in settings.MIDDLEWARE  # nothing to do, so not in the chain
    response = client.get("/v2/studies", HTTP_ORIGIN=VIEWER)
    assert not [name for name in response.headers if name.lower().startswith("access-control-")]
    assert "Vary" not in response  # the middleware passed the request by
    # A preflight goes on to the view, as any OPTIONS request: no CORS headers.
    assert not [name for name in preflight(client, "/v2/studies").headers if name.lower().startswith("access-control-")]


def test_the_admin_gets_no_cors_headers(client, settings):
    cors_on(settings, allowed=["*"])
    for response in (client.get("/admin/login/", HTTP_ORIGIN=VIEWER), preflight(client, "/admin/login/"),
                     client.get("/health/check", HTTP_ORIGIN=VIEWER)):  # fmt: skip
        assert not [name for name in response.headers if name.lower().startswith("access-control-")]


def test_with_authentication_a_preflight_needs_no_token(client, cors, monkeypatch):
    """Authentication runs in DRF's `initial()`; the preflight is answered before any view runs,
    and a refused request still tells the viewer why (its 401 is readable cross-origin)."""

    def refuse(self, request, *args, **kwargs):  # noqa: ANN001, ANN202
        raise NotAuthenticated()

    monkeypatch.setattr(APIView, "initial", refuse)
    response = preflight(client, "/v2/studies", method="GET")
    assert (response.status_code, response["Access-Control-Allow-Origin"]) == (200, VIEWER)
    refused = client.get("/v2/studies", HTTP_ORIGIN=VIEWER)
    # 401 with an authentication class configured, 403 (DRF's answer) without one.
    assert refused.status_code in (401, 403)
    assert refused["Access-Control-Allow-Origin"] == VIEWER


def test_with_authentication_on_a_preflight_needs_no_token(client, cors, auth_on):
    """The server's own OIDC authentication (not a stand-in): a preflight without a token is
    answered with the CORS headers; the request itself needs its token, and its 401 is readable."""
    response = preflight(client, "/v2/studies", method="GET")
    assert (response.status_code, response.content) == (200, b"")
    assert response["Access-Control-Allow-Origin"] == VIEWER
    assert "authorization" in [name.strip() for name in response["Access-Control-Allow-Headers"].split(",")]
    refused = client.get("/v2/studies", HTTP_ORIGIN=VIEWER, HTTP_ACCEPT="application/dicom+json")
    assert (refused.status_code, refused["Access-Control-Allow-Origin"]) == (401, VIEWER)
    allowed = client.get("/v2/studies", HTTP_ORIGIN=VIEWER, HTTP_ACCEPT="application/dicom+json",
                         **bearer(auth_on.token("globalReader")))  # fmt: skip
    assert (allowed.status_code, allowed["Access-Control-Allow-Origin"]) == (204, VIEWER)
    stranger = preflight(client, "/v2/studies", origin=STRANGER, method="GET")
    assert not [name for name in stranger.headers if name.lower().startswith("access-control-")]


def test_an_origin_setting_that_is_no_origin_stops_start_up(monkeypatch):
    monkeypatch.setenv("DICOM_CORS_ALLOWED_ORIGINS", "http://a.example:3000, *")
    assert env_origins("DICOM_CORS_ALLOWED_ORIGINS") == ["http://a.example:3000", "*"]
    for bad in ("a.example", "http://a.example/viewer", "ftp://a.example"):
        monkeypatch.setenv("DICOM_CORS_ALLOWED_ORIGINS", bad)
        with pytest.raises(SettingError, match="DICOM_CORS_ALLOWED_ORIGINS"):
            env_origins("DICOM_CORS_ALLOWED_ORIGINS")


# --- no thread hop ----------------------------------------------------------------------------


def test_cors_middleware_is_async_capable_and_takes_no_thread_hop(cors, monkeypatch):
    """Not a MiddlewareMixin: Django adapts it to neither mode, so under Django's async handler
    it runs on the event loop, and in the API handler's synchronous chain in the request's hop."""
    assert CorsMiddleware.async_capable and CorsMiddleware.sync_capable
    assert not issubclass(CorsMiddleware, MiddlewareMixin)
    threads: list[int] = []
    original = CorsMiddleware.add_response_headers

    def recorded(self, request, response):  # noqa: ANN001, ANN202
        threads.append(threading.get_ident())
        return original(self, request, response)

    monkeypatch.setattr(CorsMiddleware, "add_response_headers", recorded)

    async def scenario() -> tuple[int, str]:
        request = RequestFactory().get("/v2/partitions", HTTP_ORIGIN=VIEWER)
        response = await ASGIHandler().get_response_async(request)
        return threading.get_ident(), response["Access-Control-Allow-Origin"]

    loop_thread, allowed = asyncio.run(scenario())
    assert (threads, allowed) == ([loop_thread], VIEWER)


def test_through_the_asgi_application(cors):
    """The served application (dicomsvc.asgi, its one-hop handler) answers a preflight and adds the headers."""
    # Built as the server builds it at start, now that the setting is on (the chain is fixed then).
    application = importlib.import_module("dicomsvc.asgi").application_build()

    async def call(method: str, headers: list[tuple[bytes, bytes]]) -> tuple[int, dict[bytes, bytes]]:
        scope = {
            "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method, "scheme": "http",
            "path": "/v2/studies", "raw_path": b"/v2/studies", "query_string": b"", "root_path": "",
            "headers": [(b"origin", VIEWER.encode()), *headers], "client": ("127.0.0.1", 1),
            "server": ("127.0.0.1", 80),
        }  # fmt: skip
        messages: list[dict] = []
        done = asyncio.Event()

        async def receive() -> dict:
            if done.is_set():
                await asyncio.sleep(3600)
            done.set()
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: dict) -> None:
            messages.append(message)

        await application(scope, receive, send)
        start = messages[0]
        return start["status"], dict(start["headers"])

    status, headers = asyncio.run(call("OPTIONS", [(b"access-control-request-method", b"GET")]))
    assert (status, headers[b"access-control-allow-origin"]) == (200, VIEWER.encode())
    status, headers = asyncio.run(call("GET", [(b"accept", b"application/dicom+json")]))
    assert (status, headers[b"access-control-allow-origin"]) == (204, VIEWER.encode())


@pytest.mark.parametrize(
    ("value", "expected"),
    [("", "[] False (?!) False"),
     ("http://a.example:3000,https://b.example", "['http://a.example:3000', 'https://b.example'] False ^/v\\d+/ True"),
     ("*", "[] True ^/v\\d+/ True")],  # fmt: skip
)
def test_the_setting_turns_the_middleware_on(value, expected):
    code = (
        "from django.conf import settings as s; "
        "print(s.CORS_ALLOWED_ORIGINS, s.CORS_ALLOW_ALL_ORIGINS, s.CORS_URLS_REGEX, "
        "s.MIDDLEWARE[0] == 'corsheaders.middleware.CorsMiddleware')"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "dicomsvc.settings", "DICOM_CORS_ALLOWED_ORIGINS": value}
    result = subprocess.run([sys.executable, "-c", f"import django; django.setup(); {code}"], env=env,
                            cwd=Path(__file__).resolve().parents[1], capture_output=True, text=True, timeout=60)  # fmt: skip
    assert result.stdout.strip() == expected, result.stderr
