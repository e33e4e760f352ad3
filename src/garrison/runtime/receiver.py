"""The audit webhook receiver: kube-apiserver's webhook backend POSTs ``EventList`` batches (or single
``Event`` objects) here.

- **Authentication**: ``Authorization: Bearer TOKEN`` (compared in constant time); 401 otherwise. The
  token is never logged, and no request is logged with its headers.
- **Bounded input**: ``Content-Length`` is required (411) and at most ``max_body`` bytes (413, counted);
  each event at most ``max_event_bytes`` (skipped and counted as oversized). A body that is not an audit
  Event or EventList is refused whole with 400 and counted — nothing of it is half taken.
- **Never dropped silently**: a batch is answered 200 only once it is queued for evaluation. When the
  queue stays full for ``enqueue_timeout`` seconds the batch is refused with 503 and ``Retry-After`` (the
  API server's webhook backend retries it); refused batches and their events are counted and reported
  (:attr:`ReceiverStats.refused_events`), so any loss is said, never silent.
- **Alerts** are written as their window closes: on the event clock, which moves with each event and, when no
  batch comes for a second, with the wall-clock time since the last one; and all of them at ``stop()``.
- **Rules**: :meth:`AuditReceiver.reload` swaps in newly loaded rules; a rule file that does not load
  leaves the running rules in place and returns the error.

One evaluator thread takes batches off the queue in order, so the engine and the alert aggregator are
never shared between threads. ``GET /healthz`` answers ``ok`` without authentication; ``GET /stats``
(authenticated) gives the counters as JSON.
"""

from __future__ import annotations

import hmac
import json
import queue
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Final

from garrison.model.runtime import Alert
from garrison.runtime.alerts import DEFAULT_WINDOW, AlertAggregator
from garrison.runtime.audit_source import DEFAULT_MAX_EVENT_BYTES
from garrison.runtime.engine import RuleLoadError, RuleSet
from garrison.runtime.k8saudit import AuditEvent, NotAnAuditEvent, parse_event

#: Default largest body: kube-apiserver's webhook batches are at most --audit-webhook-batch-max-size
#: events (400 by default); 64 MiB leaves room for RequestResponse batches of large objects.
DEFAULT_MAX_BODY: Final = 64 * 1024 * 1024
#: Paths the receiver answers POSTs on (Falco's is /k8s-audit).
PATHS: Final = frozenset({"/", "/k8s-audit", "/audit", "/audit/webhook"})


@dataclass(slots=True)
class ReceiverStats:
    """Counters (read them from :meth:`AuditReceiver.stats`)."""

    bodies: int = 0
    events: int = 0
    malformed_bodies: int = 0
    oversized_bodies: int = 0
    oversized_events: int = 0
    unauthorized: int = 0
    #: Batches and events refused with 503 because the queue stayed full (the sender retries them).
    refused_batches: int = 0
    refused_events: int = 0
    evaluated: int = 0
    matches: int = 0
    alerts: int = 0
    rule_errors: int = 0


class AuditReceiver:
    """The webhook server and its evaluator thread. ``start()``, then ``stop()`` (which evaluates what is
    queued and closes every open alert)."""

    def __init__(
        self,
        ruleset: RuleSet,
        *,
        token: str,
        on_alert: Callable[[Alert], None],
        host: str = "127.0.0.1",
        port: int = 0,
        cluster: str = "",
        window: float = DEFAULT_WINDOW,
        max_body: int = DEFAULT_MAX_BODY,
        max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES,
        queue_batches: int = 256,
        enqueue_timeout: float = 5.0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        if not token:
            raise ValueError("the receiver needs a token")
        self._token = token.encode()
        self._ruleset = ruleset
        self._on_alert = on_alert
        self.cluster = cluster
        self.max_body = max_body
        self.max_event_bytes = max_event_bytes
        self.enqueue_timeout = enqueue_timeout
        self._queue: queue.Queue[list[AuditEvent] | None] = queue.Queue(maxsize=queue_batches)
        self._agg = AlertAggregator(window=window, registry=ruleset.registry)
        self._stats = ReceiverStats()
        self._lock = threading.Lock()
        self._latest_ns = 0
        self._latest_wall = 0
        receiver = self

        class Handler(_Handler):
            pass

        Handler.receiver = receiver
        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        if ssl_context is not None:
            self._server.socket = ssl_context.wrap_socket(self._server.socket, server_side=True)
        self._threads: list[threading.Thread] = []

    @property
    def address(self) -> tuple[str, int]:
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    def start(self) -> None:
        for target, name in (
            (self._evaluate_loop, "garrison-audit-eval"),
            (self._server.serve_forever, "garrison-audit-http"),
        ):
            t = threading.Thread(target=target, name=name, daemon=True)
            t.start()
            self._threads.append(t)

    def stop(self) -> None:
        """Stop accepting, evaluate what was accepted, close every alert."""
        self._server.shutdown()
        self._server.server_close()
        self._queue.put(None)
        for t in self._threads:
            t.join()
        for a in self._agg.flush():
            self._emit(a)

    def stats(self) -> ReceiverStats:
        with self._lock:
            return ReceiverStats(**asdict(self._stats))

    def reload(self, load: Callable[[], RuleSet]) -> str:
        """Swap in the rules ``load`` returns; on a load error keep the running rules and return the error
        ("" on success)."""
        try:
            ruleset = load()
        except RuleLoadError as e:
            with self._lock:
                self._stats.rule_errors += 1
            return str(e)
        self._ruleset = ruleset
        return ""

    def drain(self) -> None:
        """Wait until every accepted batch has been evaluated (for tests and orderly shutdowns)."""
        self._queue.join()

    # -- evaluation (one thread) -------------------------------------------------------------------------

    def _emit(self, a: Alert) -> None:
        with self._lock:
            self._stats.alerts += 1
        self._on_alert(a)

    def _evaluate_loop(self) -> None:
        while True:
            try:
                batch = self._queue.get(timeout=1.0)
            except queue.Empty:
                self._tick()
                continue
            try:
                if batch is None:
                    return
                self._evaluate(batch)
            finally:
                self._queue.task_done()

    def _tick(self) -> None:
        """With no batch for a second, close the alerts whose window has passed: the event clock (the last
        event's time) moved on by the wall-clock time since that event arrived."""
        if self._latest_ns:
            now = self._latest_ns + (time.monotonic_ns() - self._latest_wall)
            for a in self._agg.expire(now):
                self._emit(a)

    def _evaluate(self, batch: list[AuditEvent]) -> None:
        ruleset = self._ruleset
        matches = 0
        for ev in batch:
            t = ev.time_ns
            if t > self._latest_ns:
                self._latest_ns = t
                self._latest_wall = time.monotonic_ns()
            for m in ruleset.evaluate(ev):
                matches += 1
                closed = self._agg.add(m)
                if closed is not None:
                    self._emit(closed)
        for a in self._agg.expire(self._latest_ns):
            self._emit(a)
        with self._lock:
            self._stats.evaluated += len(batch)
            self._stats.matches += matches

    # -- HTTP side (many threads) ------------------------------------------------------------------------

    def authorized(self, header: str | None) -> bool:
        if not header or not header.startswith("Bearer "):
            return False
        return hmac.compare_digest(header[7:].strip().encode(), self._token)

    def accept(self, body: bytes) -> tuple[HTTPStatus, str]:
        """Decode and queue one body; the status and a short reason."""
        try:
            events = parse_event(body, cluster=self.cluster)
        except NotAnAuditEvent as e:
            with self._lock:
                self._stats.malformed_bodies += 1
            return HTTPStatus.BAD_REQUEST, str(e)
        kept = [e for e in events if len(e.text) <= self.max_event_bytes]
        oversized = len(events) - len(kept)
        try:
            self._queue.put(kept, timeout=self.enqueue_timeout)
        except queue.Full:
            with self._lock:
                self._stats.refused_batches += 1
                self._stats.refused_events += len(kept)
            return HTTPStatus.SERVICE_UNAVAILABLE, "busy: retry"
        with self._lock:
            self._stats.bodies += 1
            self._stats.events += len(kept)
            self._stats.oversized_events += oversized
        return HTTPStatus.OK, f"{len(kept)} event(s) accepted" + (
            f", {oversized} oversized skipped" if oversized else ""
        )

    def count(self, name: str) -> None:
        with self._lock:
            setattr(self._stats, name, getattr(self._stats, name) + 1)


class _Handler(BaseHTTPRequestHandler):
    receiver: AuditReceiver
    server_version = "garrison-audit"
    sys_version = ""
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        """No request log: nothing about a request (and never its Authorization header) is written."""

    def _reply(
        self, status: HTTPStatus, text: str, *, extra: dict[str, str] | None = None, close: bool = False
    ) -> None:
        body = (json.dumps({"status": status.value, "message": text}) + "\n").encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        r = self.receiver
        if self.path == "/healthz":
            self._reply(HTTPStatus.OK, "ok")
            return
        if self.path == "/stats":
            if not r.authorized(self.headers.get("Authorization")):
                r.count("unauthorized")
                self._reply(HTTPStatus.UNAUTHORIZED, "unauthorized")
                return
            body = (json.dumps(asdict(r.stats())) + "\n").encode()
            self.send_response(HTTPStatus.OK)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        self._reply(HTTPStatus.NOT_FOUND, "not found")

    def do_POST(self) -> None:
        r = self.receiver
        if self.path.split("?", 1)[0] not in PATHS:
            self._reply(HTTPStatus.NOT_FOUND, "not found", close=True)
            return
        if not r.authorized(self.headers.get("Authorization")):
            r.count("unauthorized")
            self._reply(HTTPStatus.UNAUTHORIZED, "unauthorized", close=True)
            return
        length_text = self.headers.get("Content-Length")
        if length_text is None or not length_text.strip().isdigit():
            self._reply(HTTPStatus.LENGTH_REQUIRED, "Content-Length required", close=True)
            return
        length = int(length_text)
        if length > r.max_body:
            r.count("oversized_bodies")
            self._reply(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"body over {r.max_body} bytes", close=True)
            return
        body = self.rfile.read(length)
        if len(body) != length:
            r.count("malformed_bodies")
            self._reply(HTTPStatus.BAD_REQUEST, "body shorter than Content-Length", close=True)
            return
        status, text = r.accept(body)
        extra = {"Retry-After": "1"} if status is HTTPStatus.SERVICE_UNAVAILABLE else None
        self._reply(status, text, extra=extra)
