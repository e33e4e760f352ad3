"""Alerts to a webhook: a real HTTP receiver on 127.0.0.1 (the standard library's server, in a thread)
gets the alerts of the recorded audit events as JSON, with the bearer token; a refusing receiver and a
full queue are counted, never silent."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from tests.runtime.audit_support import RECORDED, needs_recorded

from garrison import api
from garrison.cli.main import run
from garrison.errors import UsageError
from garrison.runtime.sinks import WebhookSink


class Receiver:
    """A webhook receiver: records each POST's headers and JSON body; answers ``status``."""

    def __init__(self, status: int = 200, delay: float = 0.0) -> None:
        self.posts: list[tuple[dict[str, str], Any]] = []
        self.status = status
        self.delay = delay
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                time.sleep(outer.delay)
                outer.posts.append((dict(self.headers), json.loads(body)))
                self.send_response(outer.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/alerts"

    def alerts(self) -> list[dict[str, Any]]:
        return [a for _, body in self.posts for a in body["alerts"]]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


@pytest.fixture(scope="module")
def recorded_alerts() -> list[Any]:
    if not RECORDED.is_file():
        pytest.skip("no recorded audit events in ../shared/k8s")
    return list(api.runtime_audit(RECORDED).alerts)


def test_sink_posts_every_alert_with_the_token(receiver: Receiver, recorded_alerts: list[Any]) -> None:
    sink = WebhookSink(receiver.url, token="s3cr3t-token", batch=4)
    for a in recorded_alerts:
        sink(a)
    stats = sink.close()
    assert stats.delivered == len(recorded_alerts) > 4 and stats.failed == stats.dropped == 0
    assert {h["Authorization"] for h, _ in receiver.posts} == {"Bearer s3cr3t-token"}
    assert all(len(body["alerts"]) <= 4 for _, body in receiver.posts)
    got = receiver.alerts()
    assert [a["rule"] for a in got] == [a.rule for a in recorded_alerts]
    assert sum(a["count"] for a in got) == sum(a.count for a in recorded_alerts)
    assert set(got[0]) >= {"rule", "priority", "count", "time", "output", "entities"}


def test_a_refusing_receiver_is_counted_and_the_token_is_not_in_the_error(recorded_alerts: list[Any]) -> None:
    r = Receiver(status=403)
    try:
        sink = WebhookSink(r.url, token="s3cr3t-token", attempts=1)
        for a in recorded_alerts:
            sink(a)
        stats = sink.close()
    finally:
        r.close()
    assert stats.delivered == 0 and stats.failed == len(recorded_alerts)
    assert "403" in stats.last_error and "s3cr3t" not in stats.summary()


def test_a_full_queue_drops_and_counts(recorded_alerts: list[Any]) -> None:
    r = Receiver(delay=0.3)
    try:
        sink = WebhookSink(r.url, batch=1, queue_max=1)
        many = recorded_alerts * 5
        for a in many:
            sink(a)
        stats = sink.close()
    finally:
        r.close()
    assert stats.dropped > 0
    assert stats.delivered + stats.failed + stats.dropped == len(many)
    assert len(r.alerts()) == stats.delivered


def test_a_webhook_must_be_http() -> None:
    with pytest.raises(UsageError, match="http"):
        WebhookSink("file:///tmp/x")


@needs_recorded
def test_cli_sends_what_it_prints(
    receiver: Receiver, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GARRISON_WEBHOOK_TOKEN", "tok-123")
    assert run(["runtime", "audit", str(RECORDED), "-f", "json", "--webhook", receiver.url]) == 0
    captured = capsys.readouterr()
    printed = [json.loads(x) for x in captured.out.splitlines()]
    assert receiver.alerts() == printed and printed
    assert f"{len(printed)} delivered, 0 failed, 0 dropped" in captured.err
    assert "tok-123" not in captured.err and receiver.posts[0][0]["Authorization"] == "Bearer tok-123"
