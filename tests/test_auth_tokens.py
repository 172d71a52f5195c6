"""Bearer tokens: what a valid one is, Microsoft's 401 for everything else, and the issuer's keys.

Each story runs against a local OpenID Connect issuer (`oidc`) on loopback; `auth_on` points the
server at it.
"""

from __future__ import annotations

import time

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from django.db import connection
from django.test.utils import CaptureQueriesContext

from dicomsvc.env import SettingError
from tests.helpers import bearer, challenge, rsa_key

pytestmark = pytest.mark.django_db

URL = "/v2/changefeed/latest"


def assert_401(response, expected_challenge: str) -> None:  # noqa: ANN001
    assert response.status_code == 401
    assert response.content == b""
    assert "Content-Type" not in response
    assert response["WWW-Authenticate"] == expected_challenge


def test_a_valid_token_is_let_in(client, auth_on):
    response = client.get(URL, **bearer(auth_on.token("globalReader")))
    assert response.status_code == 204  # the feed is empty


def test_auth_off_needs_no_token(client, oidc):
    assert client.get(URL).status_code == 204
    assert oidc.fetches == {"discovery": 0, "jwks": 0}


def test_no_token_gets_the_plain_challenge(client, auth_on):
    assert_401(client.get(URL), challenge(auth_on))


@pytest.mark.parametrize("header", ["Bearer", "Bearer ", "Basic YWxpY2U6c2VjcmV0", "Token abc"])
def test_no_bearer_token_gets_the_plain_challenge(client, auth_on, header):
    assert_401(client.get(URL, HTTP_AUTHORIZATION=header), challenge(auth_on))


@pytest.mark.parametrize("token", ["not-a-jwt", "a.b.c", "eyJhbGciOiJSUzI1NiJ9", "e30.e30.e30.e30"])
def test_a_malformed_token_is_invalid(client, auth_on, token):
    assert_401(client.get(URL, **bearer(token)), challenge(auth_on, error=True))


def test_expired(client, auth_on):
    expired = int(time.time()) - 3600
    token = auth_on.token("globalReader", exp=1_700_000_000, iat=expired - 600, nbf=expired - 600)
    assert_401(client.get(URL, **bearer(token)), challenge(auth_on, "The token expired at '11/14/2023 22:13:20'"))


def test_clock_skew_of_60_seconds_is_allowed(client, auth_on):
    now = int(time.time())
    assert client.get(URL, **bearer(auth_on.token("globalReader", exp=now - 30))).status_code == 204
    assert client.get(URL, **bearer(auth_on.token("globalReader", nbf=now + 30, iat=now))).status_code == 204


def test_not_yet_valid(client, auth_on):
    now = int(time.time())
    token = auth_on.token("globalReader", nbf=2_000_000_000, iat=now)
    assert_401(client.get(URL, **bearer(token)), challenge(auth_on, "The token is not valid before '05/18/2033 03:33:20'"))


def test_no_expiry(client, auth_on):
    token = auth_on.token("globalReader", exp=None)
    assert_401(client.get(URL, **bearer(token)), challenge(auth_on, "The token has no expiration"))


def test_wrong_audience(client, auth_on):
    token = auth_on.token("globalReader", aud=["another-api", "a third"])
    assert_401(client.get(URL, **bearer(token)), challenge(auth_on, "The audience 'another-api, a third' is invalid"))


def test_audience_among_several_is_enough(client, auth_on):
    assert client.get(URL, **bearer(auth_on.token("globalReader", aud=["other", "dicom-api"]))).status_code == 204


def test_wrong_issuer(client, auth_on):
    token = auth_on.token("globalReader", iss="https://evil.example.org/")
    assert_401(client.get(URL, **bearer(token)), challenge(auth_on, "The issuer 'https://evil.example.org/' is invalid"))


def test_a_quote_in_a_claim_cannot_break_the_header(client, auth_on):
    token = auth_on.token("globalReader", iss='x", error="none\r\nSet-Cookie: a=b')
    assert_401(client.get(URL, **bearer(token)), challenge(auth_on, "The issuer 'x?, error=?none??Set-Cookie: a=b' is invalid"))


def test_unknown_key(client, auth_on):
    token = auth_on.token("globalReader", kid="nobody-knows", key=rsa_key())
    assert_401(client.get(URL, **bearer(token)), challenge(auth_on, "The signature key was not found"))


def test_foreign_key_under_a_known_kid(client, auth_on):
    token = auth_on.token("globalReader", kid="k1", key=rsa_key())
    assert_401(client.get(URL, **bearer(token)), challenge(auth_on, "The signature is invalid"))


def test_alg_none(client, auth_on):
    assert_401(client.get(URL, **bearer(auth_on.unsigned_token())), challenge(auth_on, error=True))


def test_hs256_signed_with_the_public_key(client, auth_on):
    assert_401(client.get(URL, **bearer(auth_on.hmac_with_public_key_token())), challenge(auth_on, error=True))


def test_rs256_header_on_an_ec_key_is_refused(client, auth_on):
    auth_on.add_key("ec1", ec.generate_private_key(ec.SECP256R1()))
    assert client.get(URL, **bearer(auth_on.token("globalReader", kid="ec1"))).status_code == 204  # ES256
    forged = auth_on.token("globalReader", kid="ec1", key=rsa_key(), algorithm="RS256")
    assert_401(client.get(URL, **bearer(forged)), challenge(auth_on, error=True))


def test_keys_are_fetched_once_then_cached(client, auth_on):
    for _ in range(5):
        assert client.get(URL, **bearer(auth_on.token("globalReader"))).status_code == 204
    assert auth_on.fetches == {"discovery": 1, "jwks": 1}


def test_a_token_costs_no_database_query(client, settings, auth_on):
    token = auth_on.token("globalReader")
    client.get(URL, **bearer(token))  # keys fetched
    with CaptureQueriesContext(connection) as with_auth:
        assert client.get(URL, **bearer(token)).status_code == 204
    settings.DICOM_AUTH_ENABLED = False
    with CaptureQueriesContext(connection) as without_auth:
        assert client.get(URL).status_code == 204
    assert [q["sql"] for q in with_auth.captured_queries] == [q["sql"] for q in without_auth.captured_queries]


def test_key_rotation_fetches_the_new_kid_at_most_once_a_minute(client, auth_on, monkeypatch):
    assert client.get(URL, **bearer(auth_on.token("globalReader"))).status_code == 204
    auth_on.add_key("k2")
    # Within a minute of the last fetch the new key is not fetched: a stream of made-up key ids
    # must not turn into a stream of requests to the issuer.
    for _ in range(3):
        response = client.get(URL, **bearer(auth_on.token("globalReader", kid="k2")))
        assert_401(response, challenge(auth_on, "The signature key was not found"))
    assert auth_on.fetches["jwks"] == 1
    real = time.monotonic
    monkeypatch.setattr(time, "monotonic", lambda: real() + 61)
    assert client.get(URL, **bearer(auth_on.token("globalReader", kid="k2"))).status_code == 204
    assert client.get(URL, **bearer(auth_on.token("globalReader", kid="k1"))).status_code == 204
    assert auth_on.fetches["jwks"] == 2


def test_a_key_the_issuer_dropped_is_dropped_at_the_next_fetch(client, auth_on, monkeypatch):
    old = auth_on.token("globalReader")
    assert client.get(URL, **bearer(old)).status_code == 204
    auth_on.add_key("k2")
    auth_on.published.remove("k1")
    real = time.monotonic
    monkeypatch.setattr(time, "monotonic", lambda: real() + 61)
    assert client.get(URL, **bearer(auth_on.token("globalReader", kid="k2"))).status_code == 204
    # Accepted before, and signed by a key the issuer no longer publishes: refused now.
    assert_401(client.get(URL, **bearer(old)), challenge(auth_on, "The signature key was not found"))


def test_a_token_is_verified_once_while_it_is_valid(client, auth_on, monkeypatch):
    verified = []
    decode = jwt.decode
    monkeypatch.setattr(jwt, "decode", lambda *args, **kwargs: verified.append(1) or decode(*args, **kwargs))
    token = auth_on.token("globalReader")
    for _ in range(3):
        assert client.get(URL, **bearer(token)).status_code == 204
    assert len(verified) == 1
    # Past its expiry (as the server's clock sees it) it is checked in full again.
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() + 3600)
    client.get(URL, **bearer(token))
    assert len(verified) == 2


def test_an_unreachable_issuer_is_a_401_and_is_asked_again_only_after_a_minute(client, auth_on, monkeypatch):
    auth_on.down = True
    for _ in range(3):
        assert_401(client.get(URL, **bearer(auth_on.token("globalReader"))), challenge(auth_on, "The signature key was not found"))
    assert auth_on.fetches == {"discovery": 1, "jwks": 0}
    auth_on.down = False
    real = time.monotonic
    monkeypatch.setattr(time, "monotonic", lambda: real() + 61)
    assert client.get(URL, **bearer(auth_on.token("globalReader"))).status_code == 204
    assert auth_on.fetches == {"discovery": 2, "jwks": 1}


def test_an_unreachable_key_set_is_asked_again_only_after_a_minute(client, auth_on, monkeypatch):
    assert client.get(URL, **bearer(auth_on.token("globalReader"))).status_code == 204
    auth_on.add_key("k2")
    auth_on.down = True
    real = time.monotonic
    monkeypatch.setattr(time, "monotonic", lambda: real() + 61)
    for _ in range(3):
        response = client.get(URL, **bearer(auth_on.token("globalReader", kid="k2")))
        assert_401(response, challenge(auth_on, "The signature key was not found"))
        # The keys already known still work while the issuer is away.
        assert client.get(URL, **bearer(auth_on.token("globalReader"))).status_code == 204
    assert auth_on.fetches["jwks"] == 2


@pytest.mark.parametrize(
    "authority", ["http://idp.example.org", "ftp://127.0.0.1/", "127.0.0.1:8080", "http://10.0.0.1:8080"]
)
def test_authority_must_be_https_or_loopback(authority):
    from dicomsvc.api.tokens import issuer_url_validate

    with pytest.raises(SettingError, match="DICOM_AUTH_AUTHORITY"):
        issuer_url_validate("DICOM_AUTH_AUTHORITY", authority)


@pytest.mark.parametrize("authority", ["https://login.example.org/tenant/v2.0", "http://127.0.0.1:9000", "http://[::1]:9000", "http://localhost:1"])
def test_authority_accepted(authority):
    from dicomsvc.api.tokens import issuer_url_validate

    assert issuer_url_validate("DICOM_AUTH_AUTHORITY", authority) == authority


def test_remembered_tokens_are_bounded_oldest_first(monkeypatch):
    from dicomsvc.api import tokens

    monkeypatch.setattr(tokens, "ACCEPTED_MAX", 2)
    issuer = tokens.Issuer("https://idp.example.org")
    for name in ("a", "b", "c"):
        issuer.remember(audience="api", token=name, claims={"exp": time.time() + 60})
    assert list(issuer.accepted) == [("api", "b"), ("api", "c")]


def test_a_remembered_token_is_not_accepted_for_another_audience(client, settings, auth_on):
    token = auth_on.token("globalReader")
    assert client.get(URL, **bearer(token)).status_code == 204
    settings.DICOM_AUTH_AUDIENCE = "another-api"
    response = client.get(URL, **bearer(token))
    assert response.status_code == 401
    assert "The audience 'dicom-api' is invalid" in response["WWW-Authenticate"]
