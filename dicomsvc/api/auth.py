"""DRF authentication and permission for the DICOMweb API (DICOM_AUTH_ENABLED; docs/auth.md).

`BearerAuthentication` turns a valid OIDC bearer token into a `TokenUser`; `DataActionPermission`
lets the request through when the caller's roles grant the data action the view declares for
the method (`data_actions`) in the route's scope (its partition, or `/`). Both are installed on
every DRF view and step aside while authentication is off. Neither touches the database.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from django.conf import settings
from rest_framework.authentication import BaseAuthentication
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from dicomsvc.api.roles import roles_allow, route_scope
from dicomsvc.api.tokens import InvalidToken, challenge, token_claims

if TYPE_CHECKING:  # DRF imports the default authentication classes while importing its views
    from rest_framework.views import APIView


@dataclass(frozen=True)
class TokenUser:
    """The caller a valid token names: its subject and the role names of the roles claim."""

    subject: str | None
    roles: tuple[str, ...]

    is_authenticated = True
    is_anonymous = False


class TokenRejected(AuthenticationFailed):
    """A bearer token was sent and failed: 401 with error="invalid_token" in the challenge."""

    def __init__(self, error: InvalidToken) -> None:
        super().__init__()
        self.error = error


def _claim(claims: Mapping[str, Any], name: str) -> Any:
    """The claim `name`, or a dotted path into nested claims (Keycloak's `realm_access.roles`)."""
    if name in claims or "." not in name:
        return claims.get(name)
    value: Any = claims
    for part in name.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


def role_names(claims: Mapping[str, Any]) -> tuple[str, ...]:
    value = _claim(claims, settings.DICOM_AUTH_ROLES_CLAIM)
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list):
        return tuple(item for item in value if isinstance(item, str))
    return ()


class BearerAuthentication(BaseAuthentication):
    def authenticate(self, request: Request) -> tuple[TokenUser, dict[str, Any]] | None:
        if not settings.DICOM_AUTH_ENABLED:
            return None
        header: str = request.META.get("HTTP_AUTHORIZATION", "")
        scheme, _, token = header.strip().partition(" ")
        token = token.strip()
        # No token at all (or another scheme): a plain challenge, as ASP.NET answers it.
        if scheme.lower() != "bearer" or not token:
            return None
        try:
            claims = token_claims(token)
        except InvalidToken as exc:
            raise TokenRejected(exc) from None
        subject = claims.get("sub")
        return TokenUser(subject=subject if isinstance(subject, str) else None, roles=role_names(claims)), claims

    def authenticate_header(self, request: Request) -> str:
        return challenge(error=None)


def view_action(view: object, method: str) -> str | None:
    """The data action a view (class or instance) declares for `method` (HEAD is GET's); None if none."""
    actions: Mapping[str, str] | None = getattr(view, "data_actions", None)
    if actions is None:
        return None
    return actions.get("GET" if method == "HEAD" else method)


class DataActionPermission(BasePermission):
    def has_permission(self, request: Request, view: APIView) -> bool:
        if not settings.DICOM_AUTH_ENABLED:
            return True
        user: object = request.user  # typed as Django's users by the stubs; ours is a TokenUser
        if not isinstance(user, TokenUser):
            return False  # DRF answers 401: no authenticator succeeded
        method = cast(str, request.method)
        if not hasattr(view, method.lower()):
            return True  # the view does not answer this method: dispatch answers 405
        action = view_action(view, method)
        if action is None:
            return False  # a view that forgot its action is closed, never open
        scope = route_scope(partition_name=view.kwargs.get("partition_name"))
        return roles_allow(roles=settings.DICOM_AUTH_ROLES, names=user.roles, action=action, scope=scope)
