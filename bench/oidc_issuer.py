"""A throwaway OpenID Connect issuer on loopback for `BENCH_AUTH=1` runs (bench/run_bench.sh).

    python bench/oidc_issuer.py PORT OUTDIR

Serves discovery and a JWKS of one fresh RSA key at http://127.0.0.1:PORT until killed, and
writes OUTDIR/token (a two-hour RS256 token with the globalAdmin role) and OUTDIR/roles.json
(Microsoft's sample roles file) before it starts serving.
"""

from __future__ import annotations

import json
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

AUDIENCE = "dicom-bench"
ROLES = {
    "roles": [
        {"name": "globalReader", "dataActions": ["read"], "notDataActions": [], "scopes": ["/"]},
        {"name": "globalAdmin", "dataActions": ["*"], "notDataActions": [], "scopes": ["/"]},
    ]
}


def main() -> None:
    port, out = int(sys.argv[1]), Path(sys.argv[2])
    url = f"http://127.0.0.1:{port}"
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = {**json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key())), "kid": "bench", "use": "sig"}
    documents = {
        "/.well-known/openid-configuration": {"issuer": url, "jwks_uri": f"{url}/keys"},
        "/keys": {"keys": [jwk]},
    }
    now = int(time.time())
    claims = {"iss": url, "aud": AUDIENCE, "sub": "bench", "roles": ["globalAdmin"], "iat": now, "exp": now + 7200}
    (out / "token").write_text(jwt.encode(claims, key, algorithm="RS256", headers={"kid": "bench"}))
    (out / "roles.json").write_text(json.dumps(ROLES))

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            document = documents.get(self.path)
            if document is None:
                self.send_error(404)
                return
            body = json.dumps(document).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()


if __name__ == "__main__":
    main()
