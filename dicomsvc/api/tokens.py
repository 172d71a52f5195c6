"""Bearer tokens checked against the configured OpenID Connect issuer; PyJWT does the JOSE work.

The issuer's keys come from `{authority}/.well-known/openid-configuration` → `jwks_uri`, read
with PyJWT's JWKS client. They are kept until a token names a key id the set does not have; then
the set is fetched again, at most once a minute (and not again within a minute of a failed
fetch). A request whose key is known makes no network call and takes no lock.

A token PyJWT accepted is remembered until it expires (at most `ACCEPTED_MAX` tokens, the oldest
forgotten first): a client sends the same token with every request for its lifetime, and
checking it again would cost more than a small WADO request's own work (base64 and JSON twice,
an RSA verification: ~0.1 ms). A remembered token is checked again in full once it is outside
its `nbf`/`exp` window, and all are forgotten when the issuer's key set changes.

`InvalidToken.description` is what ASP.NET's JWT bearer handler, which Microsoft's server uses,
puts into the challenge's `error_description` for the same failure.
"""

from __future__ import annotations

import functools
import ipaddress
import json
import logging
import threading
import time
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import jwt
from django.conf import settings
from jwt import PyJWK, PyJWKClient
from jwt.exceptions import PyJWKClientConnectionError, PyJWKClientError, PyJWTError

from dicomsvc.env import SettingError

logger = logging.getLogger(__name__)

# Asymmetric algorithms only: a public key is never used as an HMAC secret, and `none` never passes.
ALGORITHMS = ["RS256", "ES256"]
CLOCK_SKEW_SECONDS = 60
REFRESH_SECONDS = 60.0
FETCH_TIMEOUT_SECONDS = 10.0
ACCEPTED_MAX = 4096
_DESCRIPTION_MAX = 200


class InvalidToken(Exception):
    """A bearer token was sent and failed; `description` is the challenge's error_description."""

    def __init__(self, description: str | None = None) -> None:
        super().__init__(description or "invalid token")
        self.description = description


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def issuer_url_validate(name: str, value: str) -> str:
    """An issuer URL: https, or http on a loopback address only (local issuers and tests)."""
    parts = urlsplit(value)
    if not parts.hostname:
        raise SettingError(f"{name}: expected an https:// URL, got {value!r}")
    if parts.scheme == "https" or (parts.scheme == "http" and _is_loopback(parts.hostname)):
        return value
    raise SettingError(f"{name}: must be https:// (http:// only for a loopback address), got {value!r}")


def _fetch_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=FETCH_TIMEOUT_SECONDS) as response:  # noqa: S310 (scheme checked)
        return json.load(response)


class _KeySetClient(PyJWKClient):
    """PyJWT's JWKS client, also holding off for a minute after a failed fetch.

    PyJWT's cool-down counts from successful fetches only; without this an unreachable issuer
    would be asked again by every request with an unknown key id."""

    failed_at: float | None = None

    def fetch_data(self) -> Any:
        if self.failed_at is not None and time.monotonic() - self.failed_at < REFRESH_SECONDS:
            raise PyJWKClientConnectionError("the issuer's key set could not be fetched less than a minute ago")
        try:
            data = super().fetch_data()
        except PyJWKClientError:
            self.failed_at = time.monotonic()
            raise
        self.failed_at = None
        return data


@dataclass(frozen=True)
class Accepted:
    """The claims of a token PyJWT accepted, and the window in which they stay valid."""

    claims: dict[str, Any]
    not_before: float
    expires: float

    def current(self) -> bool:
        now = time.time()
        return self.not_before - CLOCK_SKEW_SECONDS <= now < self.expires + CLOCK_SKEW_SECONDS


class Issuer:
    """The configured issuer: its discovery document once, then its key set."""

    def __init__(self, authority: str) -> None:
        self.authority = authority
        self._lock = threading.Lock()
        self._client: _KeySetClient | None = None
        self._discovery_failed_at: float | None = None
        # Key id → key, replaced whole after every look-up that went to the client.
        self._known: dict[str, PyJWK] = {}
        # (audience, token) → its accepted claims; read without a lock, changed under `_accepted_lock`.
        self.accepted: dict[tuple[str, str], Accepted] = {}
        self._accepted_lock = threading.Lock()

    def _jwks_client(self) -> _KeySetClient:
        with self._lock:
            if self._client is not None:
                return self._client
            failed = self._discovery_failed_at
            if failed is not None and time.monotonic() - failed < REFRESH_SECONDS:
                raise PyJWKClientConnectionError("the issuer's discovery document could not be fetched lately")
            url = self.authority.rstrip("/") + "/.well-known/openid-configuration"
            try:
                document = _fetch_json(url)
                jwks_uri = issuer_url_validate("jwks_uri", document["jwks_uri"])
            except (OSError, ValueError, KeyError, TypeError, SettingError) as exc:
                self._discovery_failed_at = time.monotonic()
                raise PyJWKClientConnectionError(f"cannot read {url}: {exc}") from exc
            # The set is kept until a token names an unknown key id (no expiry-driven refetch on
            # the request path); PyJWT's cool-down makes that refetch at most once a minute.
            self._client = _KeySetClient(
                jwks_uri, lifespan=float("inf"), timeout=FETCH_TIMEOUT_SECONDS, cooldown_duration=REFRESH_SECONDS
            )
            return self._client

    def signing_key(self, kid: str | None) -> PyJWK:
        key = self._known.get(kid) if kid is not None else None
        if key is not None:
            return key
        try:
            client = self._jwks_client()
            key = client.get_signing_key(kid) if kid is not None else None
            self._keys_set({k.key_id: k for k in client.get_signing_keys() if k.key_id})
        except PyJWKClientConnectionError as exc:
            logger.warning("Bearer token not checked: the issuer's keys are unavailable (%s)", exc)
            key = None
        except PyJWTError:  # no such key id (after the refetch it was allowed), or an unusable key set
            key = None
        if key is None:
            raise InvalidToken("The signature key was not found")
        return key

    def _keys_set(self, keys: dict[str, PyJWK]) -> None:
        if keys.keys() != self._known.keys():
            with self._accepted_lock:
                self.accepted.clear()  # a token signed by a key the issuer dropped is not valid anymore
        self._known = keys

    def remember(self, *, audience: str, token: str, claims: dict[str, Any]) -> None:
        accepted = Accepted(claims, float(claims.get("nbf", float("-inf"))), float(claims["exp"]))
        with self._accepted_lock:
            if len(self.accepted) >= ACCEPTED_MAX:
                del self.accepted[next(iter(self.accepted))]  # the oldest
            self.accepted[(audience, token)] = accepted

    def prefetch(self) -> None:
        """Reads the issuer's keys before the first request needs them (server start-up)."""
        try:
            client = self._jwks_client()
            self._keys_set({k.key_id: k for k in client.get_signing_keys() if k.key_id})
        except PyJWTError as exc:
            logger.warning("The issuer's keys could not be read at start-up; the first request retries: %s", exc)


@functools.cache
def issuer_get(authority: str) -> Issuer:
    return Issuer(authority)


def _shown(value: Any) -> str:
    """A claim value as a header can carry it: printable ASCII, no quotes, bounded."""
    if value is None:
        return "(null)"
    text = ", ".join(str(item) for item in value) if isinstance(value, list) else str(value)
    cleaned = "".join(c if " " <= c <= "~" and c not in '"\\' else "?" for c in text)
    return cleaned[:_DESCRIPTION_MAX]


def _when(value: Any) -> str:
    """A NumericDate as .NET's invariant culture prints it (MM/dd/yyyy HH:mm:ss, UTC)."""
    try:
        return datetime.fromtimestamp(float(value), UTC).strftime("%m/%d/%Y %H:%M:%S")
    except (TypeError, ValueError, OverflowError, OSError):
        return _shown(value)


def _description(exc: PyJWTError, token: str) -> str | None:
    if isinstance(exc, jwt.InvalidSignatureError):
        return "The signature is invalid"
    if isinstance(exc, jwt.MissingRequiredClaimError):
        return {"exp": "The token has no expiration", "aud": "The audience '(null)' is invalid"}.get(
            exc.claim, "The issuer '(null)' is invalid"
        )
    if not isinstance(exc, (jwt.ExpiredSignatureError, jwt.ImmatureSignatureError, jwt.InvalidAudienceError,
                            jwt.InvalidIssuerError)):
        return None
    # PyJWT checks these claims after the signature: they are the issuer's, and only name the failure.
    claims = jwt.decode(token, options={"verify_signature": False})
    if isinstance(exc, jwt.ExpiredSignatureError):
        return f"The token expired at '{_when(claims.get('exp'))}'"
    if isinstance(exc, jwt.ImmatureSignatureError):
        return f"The token is not valid before '{_when(claims.get('nbf', claims.get('iat')))}'"
    if isinstance(exc, jwt.InvalidAudienceError):
        return f"The audience '{_shown(claims.get('aud'))}' is invalid"
    return f"The issuer '{_shown(claims.get('iss'))}' is invalid"


def token_claims(token: str) -> dict[str, Any]:
    """The claims of a token the configured issuer signed for our audience, valid now; else InvalidToken."""
    issuer = issuer_get(settings.DICOM_AUTH_AUTHORITY)
    audience: str = settings.DICOM_AUTH_AUDIENCE
    accepted = issuer.accepted.get((audience, token))
    if accepted is not None and accepted.current():
        return accepted.claims
    claims = _token_verify(issuer, token, audience=audience)
    issuer.remember(audience=audience, token=token, claims=claims)
    return claims


def _token_verify(issuer: Issuer, token: str, *, audience: str) -> dict[str, Any]:
    try:
        header = jwt.get_unverified_header(token)
    except PyJWTError:
        raise InvalidToken() from None
    if header.get("alg") not in ALGORITHMS:
        raise InvalidToken()
    kid = header.get("kid")
    key = issuer.signing_key(kid if isinstance(kid, str) else None)
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            key,
            algorithms=ALGORITHMS,
            audience=audience,
            issuer=issuer.authority,
            leeway=CLOCK_SKEW_SECONDS,
            options={"require": ["exp", "iss", "aud"]},
        )
    except PyJWTError as exc:
        raise InvalidToken(_description(exc, token)) from None
    return claims


def challenge(*, error: InvalidToken | None) -> str:
    """The WWW-Authenticate value of a 401, as Microsoft's server sends it."""
    audience = settings.DICOM_AUTH_AUDIENCE
    value = f'Bearer authorization_uri="{settings.DICOM_AUTH_AUTHORITY}", resource_id="{audience}", realm="{audience}"'
    if error is not None:
        value += ', error="invalid_token"'
        if error.description:
            value += f', error_description="{error.description}"'
    return value
