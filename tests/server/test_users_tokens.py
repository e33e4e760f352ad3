"""Users and tokens through the API: shown once, revocable, expiring, disabled users locked out."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from sqlalchemy import update
from tests.server.conftest import Server

from garrison.services import server as svc
from garrison.store import tables
from garrison.store.db import open_engine
from garrison.store.records import iso_of
from garrison.store.repos import SqlStore


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_create_user_shows_the_token_once(server: Server) -> None:
    admin = server.headers("admin")
    r = server.client.post("/api/v1/users", json={"name": "dave", "role": "security-admin"}, headers=admin)
    assert r.status_code == 201
    body = r.json()
    assert body["user"]["name"] == "dave" and body["user"]["role"] == "security-admin"
    secret = body["token"]["secret"]
    assert body["token"]["token"]["prefix"] == secret[: svc.SHOWN]
    listing = server.client.get("/api/v1/users", headers=admin)
    assert listing.json()["total"] == 5 and secret not in listing.text
    tokens = server.client.get("/api/v1/tokens", headers=admin)
    assert tokens.json()["total"] == 5 and secret not in tokens.text and "secret" not in tokens.text
    log = server.client.get("/api/v1/audit-log", headers=admin)
    assert secret not in log.text
    assert {"user.create", "token.create"} <= {e["action"] for e in log.json()["items"] if e["actor"] == "admin"}
    assert server.client.get("/api/v1/alerts", headers=_bearer(secret)).status_code == 200
    bad_role = server.client.post("/api/v1/users", json={"name": "eve", "role": "root"}, headers=admin)
    assert bad_role.status_code == 422 and "role" in bad_role.json()["error"]


def test_own_tokens_create_list_revoke(server: Server) -> None:
    me = server.headers("security-admin")
    r = server.client.post("/api/v1/tokens", json={"name": "laptop", "expires_days": 30}, headers=me)
    assert r.status_code == 201
    new = r.json()
    assert new["token"]["expires_at"] > iso_of(datetime.now(UTC) + timedelta(days=29))
    mine = server.client.get("/api/v1/tokens", headers=me).json()
    assert mine["total"] == 2 and {t["name"] for t in mine["items"]} == {"default", "laptop"}

    revoked = server.client.post(f"/api/v1/tokens/{new['token']['id']}/revoke", json={"reason": "lost"}, headers=me)
    assert revoked.status_code == 200 and revoked.json()["revoked_at"]
    assert server.client.get("/api/v1/alerts", headers=_bearer(new["secret"])).status_code == 401

    # Another user's token: not found to a non-admin, revocable by an admin.
    agent_tokens = server.client.get("/api/v1/tokens", headers=server.headers("agent")).json()["items"]
    other = agent_tokens[0]["id"]
    assert server.client.post(f"/api/v1/tokens/{other}/revoke", headers=me).status_code == 404
    for_other = server.client.post("/api/v1/tokens", json={"user": "agent"}, headers=me)
    assert for_other.status_code == 403
    assert server.client.post(f"/api/v1/tokens/{other}/revoke", headers=server.headers("admin")).status_code == 200
    assert server.client.get("/api/v1/tokens", headers=server.headers("agent")).status_code == 401
    made = server.client.post("/api/v1/tokens", json={"user": "agent", "name": "new"}, headers=server.headers("admin"))
    assert made.status_code == 201
    assert server.client.get("/api/v1/tokens", headers=_bearer(made.json()["secret"])).status_code == 200


def test_a_cached_token_revoked_or_disabled_here_stops_at_once(server: Server) -> None:
    """The server trusts a checked token for ``auth_cache_ttl`` (5 s) without reading the database; a
    revocation or a disabled user through the server empties that cache, so the next request is refused."""
    admin = server.headers("admin")
    reader, agent = server.headers("security-reader"), server.headers("agent")
    assert server.settings.auth_cache_ttl > 1
    assert server.client.get("/api/v1/alerts", headers=reader).status_code == 200  # now cached
    assert server.client.get("/api/v1/tokens", headers=agent).status_code == 200
    users = {u["name"]: u for u in server.client.get("/api/v1/users", headers=admin).json()["items"]}
    assert (
        server.client.post(f"/api/v1/users/{users['security-reader']['id']}/disable", headers=admin).status_code == 200
    )
    assert server.client.get("/api/v1/alerts", headers=reader).status_code == 401
    tok = server.client.get("/api/v1/tokens", headers=agent).json()["items"][0]["id"]
    assert server.client.post(f"/api/v1/tokens/{tok}/revoke", headers=admin).status_code == 200
    assert server.client.get("/api/v1/tokens", headers=agent).status_code == 401


def test_a_revocation_made_elsewhere_is_seen_within_the_cache_time(server: Server) -> None:
    """``garrison server token revoke`` runs in another process, on its own connection to the database:
    the running server sees it when its cached check is older than ``auth_cache_ttl``, not before."""
    ttl = 1.0
    server.client.app.state.token_cache.ttl = ttl  # type: ignore[attr-defined]
    reader = server.headers("security-reader")
    assert server.client.get("/api/v1/alerts", headers=reader).status_code == 200  # checked and cached
    checked = time.monotonic()
    elsewhere = SqlStore(open_engine(server.settings.database_url))  # as the CLI opens it
    try:
        token_id = svc.authenticate(elsewhere, server.tokens["security-reader"]).token_id
        svc.revoke_token(elsewhere, None, token_id, "rotated")
    finally:
        elsewhere.engine.dispose()
    if time.monotonic() - checked < ttl * 0.8:
        assert server.client.get("/api/v1/alerts", headers=reader).status_code == 200  # still cached
    time.sleep(max(0.0, checked + ttl + 0.05 - time.monotonic()))
    assert server.client.get("/api/v1/alerts", headers=reader).status_code == 401


def test_expired_token_is_refused(server: Server) -> None:
    with server.store.engine.begin() as conn:
        conn.execute(update(tables.tokens).values(expires_at="2000-01-01T00:00:00.000000Z"))
    r = server.client.get("/api/v1/tokens", headers=server.headers("admin"))
    assert r.status_code == 401 and r.json()["error"] == "invalid token"


def test_disabled_user_is_locked_out_and_the_last_admin_stays(server: Server) -> None:
    admin = server.headers("admin")
    users = {u["name"]: u for u in server.client.get("/api/v1/users", headers=admin).json()["items"]}
    r = server.client.post(
        f"/api/v1/users/{users['security-reader']['id']}/disable", json={"reason": "left"}, headers=admin
    )
    assert r.status_code == 200 and r.json()["disabled"] is True
    assert server.client.get("/api/v1/alerts", headers=server.headers("security-reader")).status_code == 401
    last = server.client.post(f"/api/v1/users/{users['admin']['id']}/disable", headers=admin)
    assert last.status_code == 409 and "last" in last.json()["error"]
    assert server.client.get("/api/v1/users", headers=admin).status_code == 200
    entry = server.client.get("/api/v1/audit-log", headers=admin).json()["items"][0]
    assert (entry["action"], entry["reason"], entry["target_id"]) == (
        "user.disable",
        "left",
        str(users["security-reader"]["id"]),
    )


def test_bodies_are_bounded_and_errors_are_json(server: Server) -> None:
    admin = server.headers("admin")
    huge = server.client.post(
        "/api/v1/tokens",
        content=b'{"name": "' + b"x" * 200_000 + b'"}',
        headers={**admin, "Content-Type": "application/json"},
    )
    assert huge.status_code == 413 and huge.json()["status"] == 413

    def chunks() -> object:
        for _ in range(100):
            yield b"x" * 1024

    streamed = server.client.post(
        "/api/v1/tokens", content=chunks(), headers={**admin, "Content-Type": "application/json"}
    )  # type: ignore[arg-type]
    assert streamed.status_code == 413
    malformed = server.client.post(
        "/api/v1/tokens", content=b"{", headers={**admin, "Content-Type": "application/json"}
    )
    assert malformed.status_code == 422 and malformed.json()["error"].startswith("invalid request")
    extra = server.client.post("/api/v1/tokens", json={"name": "a", "admin": True}, headers=admin)
    assert extra.status_code == 422
    assert server.client.get("/nowhere").json() == {"error": "Not Found", "status": 404}
    assert svc.list_tokens(server.store, svc.authenticate(server.store, server.tokens["admin"])).total == 4
