"""Hostile requests across the whole API, walking the OpenAPI document (so a new route is covered the
day it is added): path traversal, SQL injection and unicode garbage in path and query parameters, huge
limits and offsets, malformed, oversized and mistyped bodies, wrong content types, and a token of
another cluster. Each answer is a clean 4xx with a JSON error (never a 5xx), nothing is written — the
whole database is dumped before and after and compared — and the server still answers afterwards.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import quote

import pytest
from sqlalchemy import select
from tests.server import test_roles
from tests.server.conftest import Server
from tests.server.roles import ADMIN, AGENT, ANONYMOUS, READER, SEC_ADMIN

from garrison.services import server as svc
from garrison.store import tables

#: Values for path parameters: none of them names an object, so each must be refused.
PATH_VALUES = (
    "../../../../etc/passwd",
    "..%2F..%2F..%2Fetc%2Fpasswd",
    "1 OR 1=1",
    "1'; DROP TABLE users; --",
    "%00",
    "\u202e\U0001f600\u0301",
    "9" * 40,
)
#: Values for string query parameters (filters): never a 5xx, never a write.
STRING_VALUES = (
    "' OR '1'='1",
    "%' UNION SELECT name, role FROM users --",
    "../../etc/passwd",
    "\u0000",
    "\u202e\U0001f600\ufeff\u0301",
    "x" * 5000,
    "%_\\*",
    "2026-13-45T99:99:99Z",
)
#: Raw query strings that are not valid UTF-8 or not well formed.
RAW_QUERIES = ("%FF%FE%FD", "%E2%82", "%00%00")
#: Values for integer query parameters (limit, offset, ids).
INT_VALUES = ("-1", "10" + "0" * 30, str(2**63), "0x10", "")
#: Bodies that are not JSON, or not the JSON an operation takes.
BAD_BODIES: tuple[tuple[str, bytes], ...] = (
    ("application/json", b"{"),
    ("application/json", b"[]"),
    ("application/json", b"null"),
    ("application/json", b"1e999999"),
    ("application/json", b"\xff\xfe{}"),
    ("application/json", b"[" * 100_000 + b"]" * 100_000),
    ("application/json", b'{"a": ' * 5000 + b"1" + b"}" * 5000),
    ("text/plain", b"hello"),
    ("application/x-www-form-urlencoded", b"name=x&role=admin"),
    ("multipart/form-data; boundary=x", b"--x\r\nContent-Disposition: form-data; name=a\r\n\r\nb\r\n--x--\r\n"),
    ("application/xml", b"<?xml version='1.0'?><!DOCTYPE a [<!ENTITY b SYSTEM 'file:///etc/passwd'>]><a>&b;</a>"),
)
#: Strings put into every string field of an operation's valid body.
BODY_STRINGS = ("\u0000", "\udfff\ud800", "\u202e\U0001f600", "' OR '1'='1")

_ROLE_ORDER = (ADMIN, SEC_ADMIN, AGENT, READER, ANONYMOUS)

pytestmark = pytest.mark.slow  # a few thousand requests, each checked against a dump of the database


def _dump(server: Server) -> dict[str, list[str]]:
    """Every row of every table of the store, in a stable order."""
    with server.store.engine.connect() as conn:
        return {t.name: sorted(repr(tuple(r)) for r in conn.execute(select(t))) for t in tables.metadata.sorted_tables}


def _settle(server: Server) -> None:
    """What an accepted request set going finishes now, not during the next comparison: its jobs, and the
    admission decisions the recorder writes in the background."""
    from garrison.server.admission import recorder_of

    server.wait_jobs()
    recorder_of(server.client.app).flush()  # type: ignore[arg-type]


def _operations(server: Server) -> Iterator[tuple[str, str, dict[str, Any]]]:
    doc = server.client.get("/openapi.json").json()
    for path, ops in sorted(doc["paths"].items()):
        for method, op in sorted(ops.items()):
            yield method.upper(), path, op


def _role(method: str, path: str) -> str:
    allowed = test_roles.ALLOWED[(method, path)]
    return next(r for r in _ROLE_ORDER if r in allowed)


def _url(path: str, override: dict[str, str] | None = None) -> str:
    values = {**test_roles.PARAMS, **(override or {})}
    return re.sub(r"\{(\w+)\}", lambda m: quote(values.get(m.group(1), "999999"), safe="%"), path)


def _params(op: dict[str, Any], where: str) -> list[tuple[str, str]]:
    """(name, type) of an operation's parameters in ``where`` (path or query)."""
    out = []
    for p in op.get("parameters", []):
        if p["in"] == where:
            schema = p.get("schema", {})
            kind = schema.get("type") or next((s.get("type") for s in schema.get("anyOf", []) if s.get("type")), "")
            out.append((p["name"], kind))
    return out


def _clean_refusal(r: Any, what: str) -> None:
    assert r.status_code < 500, f"{what}: {r.status_code} {r.text[:300]}"
    if r.status_code >= 400:
        media = r.headers.get("content-type", "").split(";")[0].strip()
        assert media == "application/json" or media.endswith("+json"), f"{what}: {r.headers}"  # Harbor's: +json
        assert isinstance(r.json(), dict), what


class Walk:
    """Sends hostile requests and checks each answer. Nothing may be written by a refused request or by
    any GET: the database is dumped before and after each change that was refused, and around each
    operation's batch of GETs (one dump each side: GETs never write, so a batch shows the same)."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.sent = 0
        self.accepted: list[str] = []

        #: Requests whose dumps the current batch compares (not each one).
        self.batched = False

    @contextmanager
    def operation(self, method: str, path: str, all_refused: bool = False) -> Iterator[None]:
        """A batch of one operation's cases: GETs, or (``all_refused``) cases that must all be refused."""
        self.batched = method == "GET" or all_refused
        before = _dump(self.server) if self.batched else None
        try:
            yield
        finally:
            self.batched = False
        if before is not None:
            assert _dump(self.server) == before, f"{method} {path}: refused or read-only requests wrote"

    def send(self, role: str, method: str, url: str, **kwargs: Any) -> Any:
        headers = {**self.server.headers(None if role == ANONYMOUS else role), **kwargs.pop("headers", {})}
        before = _dump(self.server) if method != "GET" and not self.batched else None
        r = self.server.client.request(method, url, headers=headers, **kwargs)
        self.sent += 1
        what = f"{method} {url[:120]!r} as {role} {str(kwargs)[:120]}"
        _clean_refusal(r, what)
        if before is None:
            return r
        if r.status_code >= 400:
            assert _dump(self.server) == before, f"{what}: answered {r.status_code} but wrote"
        else:
            self.accepted.append(f"{what}: {r.status_code}")
            _settle(self.server)
        return r


def _strings_replaced(body: Any, value: str) -> Any:
    if isinstance(body, str):
        return value
    if isinstance(body, dict):
        return {k: _strings_replaced(v, value) for k, v in body.items()}
    if isinstance(body, list):
        return [_strings_replaced(v, value) for v in body]
    return body


def test_hostile_path_parameters(server: Server) -> None:
    walk = Walk(server)
    for method, path, op in _operations(server):
        names = [n for n, _ in _params(op, "path")]
        role = _role(method, path)
        body = test_roles.BODIES.get((method, path))
        with walk.operation(method, path, all_refused=True):
            for name, value in itertools.product(names, PATH_VALUES):
                r = walk.send(role, method, _url(path, {name: value}), json=body)
                assert r.status_code >= 400, f"{method} {path} {name}={value!r}: {r.status_code}"
    assert walk.sent > 100
    assert server.client.get("/healthz").status_code == 200


def test_hostile_query_parameters(server: Server) -> None:
    walk = Walk(server)
    for method, path, op in _operations(server):
        query = _params(op, "query")
        role = _role(method, path)
        body = test_roles.BODIES.get((method, path))
        strings = [n for n, kind in query if kind not in ("integer", "boolean")]
        ints = [n for n, kind in query if kind == "integer"]
        if not query:
            continue
        with walk.operation(method, path):
            for value in STRING_VALUES if strings else ():
                walk.send(role, method, _url(path), params={n: value for n in strings}, json=body)
            for value in INT_VALUES if ints else ():
                walk.send(role, method, _url(path), params={n: value for n in ints}, json=body)
            for raw in RAW_QUERIES:
                walk.send(role, method, _url(path) + "?" + "&".join(f"{n}={raw}" for n, _ in query), json=body)
    assert walk.sent > 200
    assert server.client.get("/healthz").status_code == 200


def test_hostile_bodies(server: Server) -> None:
    walk = Walk(server)
    oversized = b'{"name": "' + b"x" * (2 * 1024 * 1024) + b'"}'
    for method, path, op in _operations(server):
        if method not in ("POST", "PUT", "PATCH", "DELETE"):
            continue
        role = _role(method, path)
        url = _url(path)
        # A required body: every bad one is refused. An optional one (``null`` is no body) and a route
        # without one may go on to answer; never with a 5xx, and what a refusal answers writes nothing.
        required = bool(op.get("requestBody", {}).get("required"))
        with walk.operation(method, path, all_refused=required):
            for ctype, content in (*BAD_BODIES, ("application/json", oversized)):
                r = walk.send(role, method, url, content=content, headers={"Content-Type": ctype})
                if required:
                    assert r.status_code >= 400, f"{method} {path} {ctype} {content[:30]!r}: {r.status_code}"
        valid = test_roles.BODIES.get((method, path))
        for value in BODY_STRINGS if valid is not None else ():
            # Valid JSON text (lone surrogates and NUL as \u escapes) in every string field: a 4xx, or
            # stored as sent; never a 5xx.
            content = json.dumps(_strings_replaced(valid, value)).encode()
            walk.send(role, method, url, content=content, headers={"Content-Type": "application/json"})
    assert walk.sent > 100
    assert server.client.get("/healthz").status_code == 200
    assert server.client.get("/api/v1/users", headers=server.headers("admin")).status_code == 200


def test_a_token_of_another_cluster_is_refused_everywhere(server: Server) -> None:
    """An agent scoped to cluster ``elsewhere`` names cluster ``prod`` (registered) in every operation an
    agent may call that takes a cluster: refused, nothing written."""
    created = server.client.post("/api/v1/clusters", json={"id": "prod"}, headers=server.headers("admin"))
    assert created.status_code in (200, 201), created.text
    _, other = svc.create_user(server.store, svc.CLI_ACTOR, "elsewhere-agent", "agent", cluster="elsewhere")
    server.tokens["elsewhere"] = other.secret
    walk = Walk(server)
    tried = 0
    for method, path, op in _operations(server):
        if AGENT not in test_roles.ALLOWED[(method, path)]:
            continue
        body = test_roles.BODIES.get((method, path))
        query = {n for n, _ in _params(op, "query")}
        paths = {n for n, _ in _params(op, "path")}
        if "cluster" in query:
            r = walk.send("elsewhere", method, _url(path), params={"cluster": "prod"}, json=body)
            assert r.status_code == 403, f"{method} {path}?cluster=prod: {r.status_code} {r.text}"
            tried += 1
        if "cluster_id" in paths:
            r = walk.send("elsewhere", method, _url(path, {"cluster_id": "prod"}), json=body)
            assert r.status_code in (403, 404), f"{method} {path} for prod: {r.status_code} {r.text}"
            tried += 1
    assert tried >= 3
    assert server.client.get("/healthz").status_code == 200


@pytest.mark.parametrize("limit", [64 * 1024 + 1])
def test_a_body_over_the_limit_streamed_in_chunks_is_413(server: Server, limit: int) -> None:
    def chunks() -> Iterator[bytes]:
        sent = 0
        while sent < limit:
            yield b"x" * 4096
            sent += 4096

    before = _dump(server)
    r = server.client.post(
        "/api/v1/users", content=chunks(), headers={**server.headers("admin"), "Content-Type": "application/json"}
    )
    assert r.status_code == 413 and r.json()["status"] == 413
    assert _dump(server) == before


def test_a_database_gone_is_503_not_500(tmp_path: Any, ruleset: Any) -> None:
    """The database file replaced by an empty one under a running app: a request answers 503 ``database
    unavailable`` (the caller may retry), not 500, and not 401 (its token was not refused, only unchecked)."""
    from fastapi.testclient import TestClient

    from garrison.server.app import create_app
    from garrison.store.db import migrate, open_engine
    from garrison.store.repos import SqlStore

    db = tmp_path / "server.db"
    engine = open_engine(f"sqlite:///{db}")
    migrate(engine)
    store = SqlStore(engine)
    token = svc.init_admin(store).secret
    with TestClient(create_app(store, ruleset)) as client:
        headers = {"Authorization": f"Bearer {token}"}
        assert client.get("/api/v1/alerts", headers=headers).status_code == 200
        engine.dispose()
        for f in tmp_path.glob("server.db*"):
            f.unlink()
        db.write_bytes(b"")  # an empty database: no tables
        r = client.get("/api/v1/alerts", headers=headers)
        assert r.status_code == 503 and r.json() == {"error": "database unavailable", "status": 503}
        assert client.get("/healthz").status_code == 200
    engine.dispose()


def test_the_admission_webhook_takes_reviews_up_to_the_policy_limit(server: Server) -> None:
    """A recorded AdmissionReview grown past the management routes' 64 KiB (a large annotation, as a big
    ``last-applied-configuration`` makes it) is judged; past the policy's ``maxRequestBytes`` it is a 413."""
    from tests.support.shared import shared_path

    recorded = shared_path("k8s", "recorded", "admission", "create-pod-priv.json")
    if not recorded.is_file():
        pytest.skip(f"no recorded AdmissionReview at {recorded}")
    review = json.loads(recorded.read_text())["body"]
    review["request"]["object"]["metadata"].setdefault("annotations", {})["big"] = "x" * (200 * 1024)
    headers = {**server.headers("admin"), "Content-Type": "application/json"}
    r = server.client.post("/admission/validate?timeout=10s", content=json.dumps(review), headers=headers)
    assert r.status_code == 200, r.text
    assert r.json()["response"]["uid"] == review["request"]["uid"]
    limit = server.client.app.state.admission_policy.max_request_bytes  # type: ignore[attr-defined]
    review["request"]["object"]["metadata"]["annotations"]["big"] = "x" * limit
    _settle(server)
    before = _dump(server)
    r = server.client.post("/admission/validate", content=json.dumps(review), headers=headers)
    assert r.status_code == 413 and r.json()["status"] == 413
    assert _dump(server) == before
