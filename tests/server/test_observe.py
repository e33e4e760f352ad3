"""``/metrics`` and the structured logs, in-process: requests counted by route template (never the raw
path), the store's gauges, readers only; one JSON line per request with its id, route, status, duration
and user; no token, Authorization header or password in any line."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from tests.server.conftest import Server
from tests.support.shared import shared_path

from garrison.server import observe

RECORDED = shared_path("k8s", "recorded", "audit-events.jsonl")


@pytest.fixture
def logs() -> Iterator[io.StringIO]:
    """The server's log lines as JSON, captured from the root logger."""
    buf = io.StringIO()
    root = logging.getLogger()
    level = root.level
    handler = observe.configure_logging("json", logging.INFO, stream=buf)
    try:
        yield buf
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def _samples(server: Server, role: str = "security-reader") -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    r = server.client.get("/metrics", headers=server.headers(role))
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
    out = {}
    for family in text_string_to_metric_families(r.text):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def _lines(buf: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in buf.getvalue().splitlines() if line.strip()]


def test_metrics_count_requests_by_route_template_and_status(server: Server) -> None:
    for alert_id in (1, 2, 3):
        assert server.client.get(f"/api/v1/alerts/{alert_id}", headers=server.headers("admin")).status_code == 404
    assert server.client.get("/api/v1/alerts/4").status_code == 401  # refused before routing: same template
    assert server.client.get("/api/v1/alerts", headers=server.headers("admin")).status_code == 200
    server.client.get("/no/such/path/7")
    m = _samples(server)
    template = "/api/v1/alerts/{alert_id}"
    req = "garrison_http_requests_total"
    assert m[(req, frozenset({("method", "GET"), ("route", template), ("status", "404")}))] == 3
    assert m[(req, frozenset({("method", "GET"), ("route", template), ("status", "401")}))] == 1
    assert m[(req, frozenset({("method", "GET"), ("route", "/api/v1/alerts"), ("status", "200")}))] == 1
    assert m[(req, frozenset({("method", "GET"), ("route", observe.UNMATCHED), ("status", "404")}))] == 1
    routes = {dict(labels).get("route") for (name, labels) in m if name == req}
    assert routes == {template, "/api/v1/alerts", observe.UNMATCHED}  # no raw path, no id
    count = "garrison_http_request_duration_seconds_count"
    assert m[(count, frozenset({("method", "GET"), ("route", template)}))] == 4
    build = [labels for (name, labels) in m if name == "garrison_build_info"]
    assert len(build) == 1 and ("version", __import__("garrison").__version__) in build[0]


@pytest.mark.skipif(not RECORDED.is_file(), reason=f"no recorded audit events at {RECORDED}")
def test_metrics_gauges_read_the_store(server: Server) -> None:
    before = _samples(server)
    assert sum(v for (n, _), v in before.items() if n == "garrison_alerts") == 0
    items = [json.loads(line) for line in RECORDED.read_text().splitlines() if line.strip()]
    body = {"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "items": items}
    out = server.client.post("/api/v1/events/k8s-audit", json=body, headers=server.headers("agent")).json()
    after = _samples(server)
    by_status = {dict(labels)["status"]: v for (n, labels), v in after.items() if n == "garrison_alerts"}
    assert sum(by_status.values()) == out["alerts"] > 0
    assert by_status["dismissed"] == 0
    assert after[("garrison_images", frozenset())] == 0


def test_jobs_gauge_is_by_task_and_state(server: Server) -> None:
    """``garrison_jobs{task, state}`` from the server's real queue (``garrison server run`` adds this source):
    every task in every state, 0 included, and what ran counted under its own task."""
    from garrison.jobs import STATES
    from garrison.jobs.tasks import TASKS

    server.client.app.state.metrics.sources.append(observe.queue_gauges(server.queue.counts))  # type: ignore[attr-defined]
    before = {dict(labels)["task"] for (n, labels) in _samples(server) if n == "garrison_jobs"}
    assert before == set(TASKS)
    for _ in range(2):
        server.queue.enqueue("purge_deliveries", {})
    server.wait_jobs()
    m = _samples(server)
    jobs = {(dict(labels)["task"], dict(labels)["state"]): v for (n, labels), v in m.items() if n == "garrison_jobs"}
    assert set(jobs) == {(task, state) for task in TASKS for state in STATES}
    assert jobs[("purge_deliveries", "done")] == 2
    assert sum(v for (task, _), v in jobs.items() if task != "purge_deliveries") == 0
    assert all(set(dict(labels)) == {"task", "state"} for (n, labels) in m if n == "garrison_jobs")


def test_metrics_are_for_readers_only(server: Server) -> None:
    assert server.client.get("/metrics").status_code == 401
    assert server.client.get("/metrics", headers={"Authorization": "Bearer garrison_nope"}).status_code == 401
    assert server.client.get("/metrics", headers=server.headers("agent")).status_code == 403
    for role in ("admin", "security-admin", "security-reader"):
        assert server.client.get("/metrics", headers=server.headers(role)).status_code == 200


def test_a_gauge_source_that_fails_does_not_fail_the_scrape(server: Server) -> None:
    def broken() -> Iterator[observe.Gauge]:
        raise RuntimeError("database gone")
        yield  # pragma: no cover

    server.client.app.state.metrics.sources.append(broken)  # type: ignore[attr-defined]
    m = _samples(server)
    assert any(n == "garrison_build_info" for n, _ in m)


def test_one_json_line_per_request_and_no_secret_in_any(server: Server, logs: io.StringIO) -> None:
    admin = server.tokens["admin"]
    r = server.client.post("/api/v1/tokens", json={"name": "laptop"}, headers=server.headers("admin"))
    assert r.status_code == 201
    fresh = r.json()["secret"]
    server.client.get("/api/v1/alerts", headers={**server.headers("security-reader"), "X-Request-ID": "trace-42"})
    server.client.get("/api/v1/alerts", headers={"Authorization": f"Bearer {fresh}x"})  # a wrong token
    server.client.get(f"/api/v1/alerts?note={admin}", headers={"Authorization": "Basic YWRtaW46c2VjcmV0"})
    server.client.get("/api/v1/alerts", headers={"X-Request-ID": "bad id\nforged line"})
    observe.event("an event naming a secret", url="postgresql://u:hunter2@db/x", token=admin)
    logging.getLogger("garrison.test").warning("a careless line: Bearer %s and %s", admin, fresh)

    lines = _lines(logs)
    requests = [x for x in lines if x["logger"] == "garrison.server.requests"]
    assert len(requests) == 5
    first = requests[0]
    assert first["method"] == "POST" and first["route"] == "/api/v1/tokens" and first["status"] == 201
    assert first["user"] == "admin" and first["remote"] and first["duration_ms"] >= 0
    assert len(first["request_id"]) == 16 and first["time"].endswith("Z")
    assert requests[1]["request_id"] == "trace-42" and requests[1]["user"] == "security-reader"
    assert [x["status"] for x in requests[2:]] == [401, 401, 401]
    assert requests[4]["request_id"] != "bad id\nforged line" and "\n" not in requests[4]["request_id"]
    assert {x["route"] for x in requests[2:]} == {"/api/v1/alerts"}  # the raw path (and its query) is not logged

    text = logs.getvalue()
    for secret in (admin, fresh, *server.tokens.values(), "YWRtaW46c2VjcmV0", "hunter2"):
        assert secret not in text
    assert "garrison_[redacted]" in text and "Bearer [redacted]" in text and "u:[redacted]@db" in text


def test_the_answer_carries_the_request_id(server: Server) -> None:
    r = server.client.get("/healthz", headers={"X-Request-ID": "abc.123"})
    assert r.headers["x-request-id"] == "abc.123"
    assert len(server.client.get("/healthz").headers["x-request-id"]) == 16


def test_text_format_and_redaction_of_odd_records() -> None:
    buf = io.StringIO()
    root = logging.getLogger()
    level = root.level
    handler = observe.configure_logging("text", logging.INFO, stream=buf)
    try:
        log = logging.getLogger("garrison.test")
        log.info("sealed gAAAAABnR2Vtb3JlX3NlY3JldF9zZWFsZWRfZGF0YV9oZXJl end")
        observe.event("stopped", signal="SIGTERM", empty="")
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
    text = buf.getvalue()
    assert "gAAAAAB" not in text and "[sealed secret redacted]" in text
    assert "garrison.server: stopped signal=SIGTERM\n" in text
    assert "empty=" not in text


def test_registry_credentials_reach_no_log_line(server: Server, logs: io.StringIO) -> None:
    """A registry with a password and a token, a scan of it that fails (the job logs its error): neither
    the credentials nor their sealed form in the store appear in any line."""
    from sqlalchemy import select

    from garrison.store.images import registries

    password, token = "hunter2-registry-password", "registry-static-token-0123456789"
    body = {"name": "private", "url": "http://127.0.0.1:1", "username": "robot", "password": password}
    r = server.client.post("/api/v1/registries", json=body, headers=server.headers("admin"))
    assert r.status_code == 201, r.text
    body = {"name": "other", "url": "http://127.0.0.1:2", "token": token}
    assert server.client.post("/api/v1/registries", json=body, headers=server.headers("admin")).status_code == 201
    scan = server.client.post(
        "/api/v1/scans", json={"reference": "127.0.0.1:1/private/app:1"}, headers=server.headers("admin")
    )
    assert scan.status_code in (200, 201, 202), scan.text
    server.wait_jobs()
    with server.store.engine.connect() as conn:
        sealed = [row.credentials for row in conn.execute(select(registries.c.credentials))]
    assert len(sealed) == 2 and all(sealed)
    # The server's own HTTP client (registry pulls, webhook deliveries) logs no URL: a Slack webhook's
    # path is its secret.
    logging.getLogger("httpx").info("HTTP Request: POST https://hooks.slack.com/services/T0/B0/sekrit")
    text = logs.getvalue()
    assert "sekrit" not in text
    assert "POST /api/v1/scans" in text and '"logger": "garrison.jobs"' in text  # the job ran and logged
    for secret in (password, token, *sealed):
        assert secret not in text
