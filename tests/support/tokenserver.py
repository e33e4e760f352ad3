"""A minimal Docker registry token server (the ``auth.token`` realm) on loopback, for real auth tests.

Why write one: distribution verifies real RS256 JWTs whose header carries the signing certificate chain
(``x5c``) rooted in its ``rootcertbundle``; a client under test must follow the real dance
(401 + ``WWW-Authenticate: Bearer realm,service,scope`` → GET realm with Basic auth → Bearer token).

Policy (deliberately simple and visible to tests):

* valid Basic credentials → every requested action is granted;
* no credentials → a token with the actions in ``anonymous`` (default: none) — like Docker Hub;
* wrong credentials → 401.

Every request is recorded in :attr:`TokenServer.requests` so tests can assert what a client asked for.
"""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt
from tests.support.certs import KeyPair


@dataclass
class TokenRequest:
    """One request the token server saw."""

    service: str
    scopes: list[str]
    account: str | None
    authorized: bool


def parse_scope(scope: str) -> tuple[str, str, list[str]] | None:
    """``repository:name/with/slashes:pull,push`` → (type, name, actions); ``None`` when malformed."""
    parts = scope.split(":")
    if len(parts) < 3:
        return None
    return parts[0], ":".join(parts[1:-1]), [a for a in parts[-1].split(",") if a]


@dataclass
class TokenServer:
    """Serves ``GET /token?service=…&scope=…`` on 127.0.0.1 in a daemon thread."""

    signer: KeyPair
    issuer: str = "garrison-test-issuer"
    service: str = "garrison-test-registry"
    users: dict[str, str] = field(default_factory=lambda: {"alice": "s3cret"})
    anonymous: tuple[str, ...] = ()
    ttl: int = 300
    requests: list[TokenRequest] = field(default_factory=list)
    _httpd: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None

    @property
    def realm(self) -> str:
        assert self._httpd is not None, "start() first"
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/token"

    def start(self) -> TokenServer:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server._handle(self)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="token-server", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def _account(self, handler: BaseHTTPRequestHandler) -> tuple[str | None, bool]:
        """(account name, credentials ok); (None, True) when no credentials were sent."""
        header = handler.headers.get("Authorization", "")
        if not header.startswith("Basic "):
            return None, True
        try:
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return None, False
        return user, self.users.get(user) == password

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        url = urlsplit(handler.path)
        if url.path != "/token":
            handler.send_error(404)
            return
        query = parse_qs(url.query)
        scopes = [s for value in query.get("scope", []) for s in value.split(" ") if s]
        service = query.get("service", [""])[0]
        account, ok = self._account(handler)
        self.requests.append(TokenRequest(service, scopes, account, ok))
        if not ok:
            body = json.dumps({"errors": [{"code": "UNAUTHORIZED", "message": "bad credentials"}]}).encode()
            handler.send_response(401)
            handler.send_header("Content-Type", "application/json")
            handler.send_header("WWW-Authenticate", f'Basic realm="{self.realm}"')
            handler.send_header("Content-Length", str(len(body)))
            handler.end_headers()
            handler.wfile.write(body)
            return
        token = self.issue(account, scopes)
        body = json.dumps(
            {
                "token": token,
                "access_token": token,
                "expires_in": self.ttl,
                "issued_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            }
        ).encode()
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    def issue(self, account: str | None, scopes: list[str]) -> str:
        """A signed token granting ``scopes`` to ``account`` (anonymous: only ``self.anonymous`` actions)."""
        access = []
        for scope in scopes:
            parsed = parse_scope(scope)
            if parsed is None:
                continue
            kind, name, actions = parsed
            granted = actions if account is not None else [a for a in actions if a in self.anonymous]
            access.append({"type": kind, "name": name, "actions": granted})
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "sub": account or "",
            "aud": self.service,
            "exp": now + self.ttl,
            "nbf": now - 10,
            "iat": now,
            "jti": uuid.uuid4().hex,
            "access": access,
        }
        headers = {"x5c": [base64.b64encode(self.signer.cert_der).decode()]}
        return jwt.encode(claims, self.signer.key_pem, algorithm="RS256", headers=headers)
