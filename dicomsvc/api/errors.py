"""The one exception handler: domain errors and framework errors to plain-text HTTP bodies.

Microsoft's server answers errors with the message as a plain-text body; clients such as
dicomweb-client surface that text, so we do the same.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from django.core.exceptions import PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, HttpResponse
from rest_framework import exceptions as drf_exceptions
from rest_framework.views import set_rollback

from dicomsvc.api.auth import TokenRejected
from dicomsvc.api.tokens import challenge
from dicomsvc.errors import ApplicationError, FailedAttributes

logger = logging.getLogger(__name__)

TEXT = "text/plain; charset=utf-8"


def error_response(status: int, message: str) -> HttpResponse:
    return HttpResponse(message, status=status, content_type=TEXT)


def unauthorized_response(exc: drf_exceptions.AuthenticationFailed | drf_exceptions.NotAuthenticated) -> HttpResponse:
    """401 with an empty body and Microsoft's challenge; a failed token adds error="invalid_token"."""
    response = HttpResponse(status=401)
    del response["Content-Type"]  # no body, so no type (Microsoft's 401 has none)
    if isinstance(exc, TokenRejected):
        response["WWW-Authenticate"] = challenge(error=exc.error)
    else:
        # DRF set the authenticator's challenge on the exception (`APIView.handle_exception`).
        response["WWW-Authenticate"] = getattr(exc, "auth_header", None) or challenge(error=None)
    return response


def exception_handler(exc: Exception, context: dict[str, Any]) -> HttpResponse | None:
    if isinstance(exc, FailedAttributes):
        set_rollback()
        body = json.dumps(exc.dataset(), ensure_ascii=False)
        return HttpResponse(body, status=exc.status_code, content_type="application/dicom+json")
    if isinstance(exc, ApplicationError):
        set_rollback()
        response = error_response(exc.status_code, exc.message)
        for name, value in exc.response_headers().items():
            response[name] = value
        return response
    if isinstance(exc, Http404):
        return error_response(404, str(exc) or "The specified resource cannot be found.")
    if isinstance(exc, (drf_exceptions.NotAuthenticated, drf_exceptions.AuthenticationFailed)):
        return unauthorized_response(exc)
    if isinstance(exc, (PermissionDenied, drf_exceptions.PermissionDenied)):
        return error_response(403, "Authorization failed.")
    if isinstance(exc, DjangoValidationError):
        set_rollback()
        return error_response(400, "; ".join(exc.messages))
    if isinstance(exc, drf_exceptions.ParseError):
        return error_response(400, "The syntax of the request body is invalid.")
    if isinstance(exc, drf_exceptions.UnsupportedMediaType):
        return error_response(415, f"The specified content type '{exc.detail}' is not supported.")
    if isinstance(exc, drf_exceptions.APIException):
        detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        return error_response(exc.status_code, detail)
    return None


def not_found_view(request: Any, exception: Exception | None = None) -> HttpResponse:
    """Unknown routes answer in the API's plain-text style rather than an HTML page."""
    return error_response(404, "The requested resource was not found.")
