"""A local OpenID Connect issuer: discovery and JWKS served on loopback, tokens signed with its keys."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

AUDIENCE = "dicom-api"

# Every kind of role the tests need, in Microsoft's roles.json format.
ROLES = {
    "$schema": "../roles.schema.json",
    "roles": [
        {"name": "globalReader", "dataActions": ["read"], "notDataActions": [], "scopes": ["/"]},
        {"name": "globalWriter", "dataActions": ["write"], "notDataActions": [], "scopes": ["/"]},
        {"name": "globalDeleter", "dataActions": ["delete"], "notDataActions": [], "scopes": ["/"]},
        {"name": "globalExporter", "dataActions": ["export"], "notDataActions": [], "scopes": ["/"]},
        {"name": "tagManager", "dataActions": ["manageExtendedQueryTags"], "notDataActions": [], "scopes": ["/"]},
        {"name": "globalAdmin", "dataActions": ["*"], "notDataActions": [], "scopes": ["/"]},
        {"name": "allButDelete", "dataActions": ["*"], "notDataActions": ["delete"], "scopes": ["/"]},
        {"name": "aliceStaff", "dataActions": ["*"], "notDataActions": [], "scopes": ["/partitions/alice"]},
        {"name": "aliceReader", "dataActions": ["read"], "notDataActions": [], "roleScopes": ["/partitions/alice"]},
    ],
}
# The one role granting each action alone, everywhere.
ROLE_FOR = {
    "read": "globalReader", "write": "globalWriter", "delete": "globalDeleter", "export": "globalExporter",
    "manageExtendedQueryTags": "tagManager",
}  # fmt: skip


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


class LocalIssuer:
    """An issuer at http://127.0.0.1:{port}; `published` are the key ids its JWKS lists."""

    def __init__(self) -> None:
        self.keys: dict[str, Any] = {"k1": rsa_key()}
        self.published = ["k1"]
        self.fetches = {"discovery": 0, "jwks": 0}
        self.down = False  # answer 503 to everything (still counted)
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                kind = {"/.well-known/openid-configuration": "discovery", "/keys": "jwks"}.get(self.path)
                if issuer.down and kind:
                    issuer.fetches[kind] += 1
                    self.send_error(503)
                    return
                if self.path == "/.well-known/openid-configuration":
                    issuer.fetches["discovery"] += 1
                    body = {"issuer": issuer.url, "jwks_uri": f"{issuer.url}/keys"}
                elif self.path == "/keys":
                    issuer.fetches["jwks"] += 1
                    body = {"keys": [issuer.public_jwk(kid) for kid in issuer.published]}
                else:
                    self.send_error(404)
                    return
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def public_jwk(self, kid: str) -> dict[str, Any]:
        private = self.keys[kid]
        algorithm = jwt.algorithms.ECAlgorithm if isinstance(private, ec.EllipticCurvePrivateKey) else jwt.algorithms.RSAAlgorithm
        jwk = json.loads(algorithm.to_jwk(private.public_key()))
        return {**jwk, "kid": kid, "use": "sig"}

    def add_key(self, kid: str, key: Any = None, *, publish: bool = True) -> None:
        self.keys[kid] = key or rsa_key()
        if publish:
            self.published.append(kid)

    def claims(self, **overrides: Any) -> dict[str, Any]:
        now = int(time.time())
        claims = {"iss": self.url, "aud": AUDIENCE, "sub": "alice@example.org", "iat": now, "nbf": now, "exp": now + 600}
        claims.update(overrides)
        return {name: value for name, value in claims.items() if value is not None}

    def token(self, *roles: str, kid: str = "k1", key: Any = None, algorithm: str | None = None, **claims: Any) -> str:
        """A token signed with key `kid` (or `key`, named `kid`), with `roles` in the roles claim."""
        private = key or self.keys[kid]
        if algorithm is None:
            algorithm = "ES256" if isinstance(private, ec.EllipticCurvePrivateKey) else "RS256"
        payload = self.claims(**({"roles": list(roles)} if roles else {}), **claims)
        return jwt.encode(payload, private, algorithm=algorithm, headers={"kid": kid})

    def unsigned_token(self) -> str:
        """`alg: none`, no signature."""
        header = _b64(json.dumps({"alg": "none", "typ": "JWT", "kid": "k1"}).encode())
        return f"{header}.{_b64(json.dumps(self.claims(roles=['globalAdmin'])).encode())}."

    def hmac_with_public_key_token(self) -> str:
        """HS256 whose secret is the published public key: the classic algorithm confusion."""
        pem = self.keys["k1"].public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        header = _b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": "k1"}).encode())
        payload = _b64(json.dumps(self.claims(roles=["globalAdmin"])).encode())
        signature = hmac.new(pem, f"{header}.{payload}".encode(), hashlib.sha256).digest()
        return f"{header}.{payload}.{_b64(signature)}"


@contextmanager
def local_issuer() -> Iterator[LocalIssuer]:
    issuer = LocalIssuer()
    thread = threading.Thread(target=issuer.server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
    thread.start()
    try:
        yield issuer
    finally:
        issuer.server.shutdown()
        issuer.server.server_close()


def bearer(token: str) -> dict[str, str]:
    """Test-client keyword arguments sending `token`."""
    return {"HTTP_AUTHORIZATION": f"Bearer {token}"}


def challenge(issuer: LocalIssuer, description: str | None = None, *, error: bool = False) -> str:
    """The WWW-Authenticate value the server should send."""
    value = f'Bearer authorization_uri="{issuer.url}", resource_id="{AUDIENCE}", realm="{AUDIENCE}"'
    if error or description:
        value += ', error="invalid_token"'
    if description:
        value += f', error_description="{description}"'
    return value
