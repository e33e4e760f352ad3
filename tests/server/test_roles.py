"""The role matrix: every operation of the OpenAPI document, called with every role and with no token.

The table below (and its parts, one ``matrix_*.py`` per area) is written out by hand (not read from the
server), so a route whose dependency grants the wrong roles fails here; a route added without a row
fails the completeness test.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from typing import Any

from fastapi.routing import APIRoute
from starlette.routing import Route
from tests.server import (
    matrix_admission,
    matrix_clusters,
    matrix_harbor,
    matrix_images,
    matrix_notify,
    matrix_ops,
)
from tests.server.conftest import Server
from tests.server.roles import ADMIN, AGENT, ANONYMOUS, EVERYONE, READER, ROLES, SEC_ADMIN

_PARTS = (matrix_images, matrix_clusters, matrix_notify, matrix_harbor, matrix_admission, matrix_ops)

#: (method, path) → who may call it.
ALLOWED: dict[tuple[str, str], frozenset[str]] = {
    ("GET", "/healthz"): EVERYONE,
    ("GET", "/readyz"): EVERYONE,
    ("GET", "/api/v1/users"): frozenset({ADMIN}),
    ("POST", "/api/v1/users"): frozenset({ADMIN}),
    ("POST", "/api/v1/users/{user_id}/disable"): frozenset({ADMIN}),
    ("GET", "/api/v1/tokens"): frozenset(ROLES),
    ("POST", "/api/v1/tokens"): frozenset({ADMIN, SEC_ADMIN, AGENT}),
    ("POST", "/api/v1/tokens/{token_id}/revoke"): frozenset({ADMIN, SEC_ADMIN, AGENT}),
    ("GET", "/api/v1/alerts"): frozenset({ADMIN, SEC_ADMIN, READER}),
    ("GET", "/api/v1/alerts/{alert_id}"): frozenset({ADMIN, SEC_ADMIN, READER}),
    ("POST", "/api/v1/alerts/{alert_id}/dismiss"): frozenset({ADMIN, SEC_ADMIN}),
    ("POST", "/api/v1/alerts/{alert_id}/reopen"): frozenset({ADMIN, SEC_ADMIN}),
    ("POST", "/api/v1/events/k8s-audit"): frozenset({ADMIN, AGENT}),
    ("GET", "/api/v1/audit-log"): frozenset({ADMIN, SEC_ADMIN}),
}
for _part in _PARTS:
    assert not set(_part.ALLOWED) & set(ALLOWED), _part.__name__
    ALLOWED.update(_part.ALLOWED)

#: A valid body per operation that takes one, so an allowed caller gets past validation.
BODIES: dict[tuple[str, str], Any] = {
    ("POST", "/api/v1/tokens"): {"name": "matrix"},
    ("POST", "/api/v1/alerts/{alert_id}/dismiss"): {"reason": "matrix"},
    ("POST", "/api/v1/events/k8s-audit"): {"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "items": []},
}
#: A value for each path parameter (default "999999": no such object).
PARAMS: dict[str, str] = {}
for _part in _PARTS:
    BODIES.update(_part.BODIES)
    PARAMS.update(_part.PARAMS)

_unique = itertools.count()


def _operations(server: Server) -> set[tuple[str, str]]:
    doc = server.client.get("/openapi.json").json()
    return {(m.upper(), p) for p, ops in doc["paths"].items() for m in ops}


def _call(server: Server, method: str, path: str, role: str) -> int:
    url = re.sub(r"\{(\w+)\}", lambda m: PARAMS.get(m.group(1), "999999"), path)
    body = BODIES.get((method, path))
    if (method, path) == ("POST", "/api/v1/users"):
        body = {"name": f"m{next(_unique)}", "role": "security-reader"}
    headers = server.headers(None if role == ANONYMOUS else role)
    status: int = server.client.request(method, url, json=body, headers=headers).status_code
    return status


def _walk(routes: list[Any], prefix: str = "") -> Iterator[tuple[str, str]]:
    """(method, path) of every route, through included routers (FastAPI ≥ 0.13x keeps an included
    router as one ``_IncludedRouter`` entry with its prefix; older ones copy its routes flat)."""
    for r in routes:
        if isinstance(r, Route):  # APIRoute included
            for m in sorted(r.methods or ()):
                if m != "HEAD" or isinstance(r, APIRoute):
                    yield m, prefix + r.path
        elif hasattr(r, "original_router") and hasattr(r, "include_context"):
            yield from _walk(r.original_router.routes, prefix + r.include_context.prefix)
        else:
            raise AssertionError(f"a route of a kind this test does not know: {r!r}")


def test_matrix_covers_every_route(server: Server) -> None:
    """The table, the OpenAPI document and the app's routes name the same operations; the only other
    route is the OpenAPI document itself (no /docs, no /redoc)."""
    routes = set(_walk(server.client.app.routes))  # type: ignore[attr-defined]
    assert _operations(server) == set(ALLOWED)
    assert routes == {*ALLOWED, ("GET", "/openapi.json")}
    assert len(ALLOWED) >= 14


def test_every_route_with_every_role(server: Server) -> None:
    """Anonymous: 401 everywhere but health; a role not allowed: 403; an allowed one gets through."""
    seen = 0
    for (method, path), allowed in sorted(ALLOWED.items()):
        for role in (ANONYMOUS, *ROLES):
            status = _call(server, method, path, role)
            where = f"{method} {path} as {role}: {status}"
            if role in allowed:
                assert status not in (401, 403), where
                assert status < 500, where
            elif role == ANONYMOUS:
                assert status == 401, where
            else:
                assert status == 403, where
            seen += 1
    assert seen == len(ALLOWED) * 5


def test_reader_changes_nothing_and_only_admins_manage_users() -> None:
    """The two rules of the issue, read off the table (so the table cannot drift from them)."""
    for (method, path), allowed in ALLOWED.items():
        if method != "GET":
            assert READER not in allowed, path
            assert ANONYMOUS not in allowed, path
        if path.startswith("/api/v1/users"):
            assert allowed == {ADMIN}, path


def test_bad_credentials_are_401_with_a_json_error(server: Server) -> None:
    for header in ("Bearer nope", "Bearer garrison_notatoken", "Basic YWRtaW46YWRtaW4=", "Bearer ", "garrison_x"):
        r = server.client.get("/api/v1/alerts", headers={"Authorization": header})
        assert r.status_code == 401, header
        assert r.headers["www-authenticate"] == "Bearer"
        assert r.json()["status"] == 401 and r.json()["error"]


def test_openapi_declares_bearer_auth(server: Server) -> None:
    doc = server.client.get("/openapi.json").json()
    schemes = doc["components"]["securitySchemes"]
    assert any(s.get("scheme", "").lower() == "bearer" for s in schemes.values())
    assert "security" in doc["paths"]["/api/v1/alerts"]["get"]
    assert "security" not in doc["paths"]["/healthz"]["get"]


def test_no_valid_token_is_401_whatever_the_body(server: Server) -> None:
    for auth, body in itertools.product((None, "Bearer garrison_wrong"), (b"{", b'{"unexpected": 1}', b"x" * 100_000)):
        headers = {"Content-Type": "application/json", **({"Authorization": auth} if auth else {})}
        for (method, path), allowed in ALLOWED.items():
            if method == "POST" and ANONYMOUS not in allowed:
                url = re.sub(r"\{(\w+)\}", "1", path)
                r = server.client.post(url, content=body, headers=headers)
                assert r.status_code == 401, f"{path} {auth} {body[:20]!r}: {r.status_code}"
    assert server.client.get("/api/v1/no-such-route").status_code == 401
