"""What the server tells its operators: structured logs and Prometheus metrics.

- **Logs** (:func:`configure_logging`): one line per request (time, request id, method, route template,
  status, duration, the caller's user name, the remote address) and per server event, as JSON objects or as
  text. Nothing here ever reads a request header other than ``X-Request-ID``, and :class:`Redact` scrubs
  anything shaped like a garrison token, a bearer credential, a sealed (Fernet) secret or a URL password from
  every record that reaches the handler, whoever logged it — a second line of defence, not the first.
- **Metrics** (:class:`Metrics`, served at ``/metrics`` to readers): requests and their latency by route
  *template* (``/api/v1/alerts/{alert_id}``, never the raw path, so the series stay few and hold no
  identifiers), the store's gauges read at scrape time (alerts by status, jobs by task and state when the
  queue counts them), and the build. Each app has its own registry, so many apps (tests) never share one.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, InfoMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from garrison.jobs import JobCounts
from garrison.services.server import Principal
from garrison.store.images import ImageFilter
from garrison.store.records import AlertFilter, AlertStatus
from garrison.store.repos import Store

log = logging.getLogger("garrison.server.requests")
events = logging.getLogger("garrison.server")

#: The route label of a request no route matched (a scanner's probes must not make a series each).
UNMATCHED = "unmatched"
_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")

# --- logs ----------------------------------------------------------------------------------------------

_SECRETS = (
    (re.compile(r"garrison_[A-Za-z0-9_-]{16,}"), "garrison_[redacted]"),  # a token: 43 random characters
    (re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]+"), r"\1 [redacted]"),
    (re.compile(r"gAAAAA[A-Za-z0-9_=-]{20,}"), "[sealed secret redacted]"),
    (re.compile(r"(://[^/\s:@]*):[^/\s@]+@"), r"\1:[redacted]@"),
)


def redact(text: str) -> str:
    """``text`` with every token, credential, sealed secret and URL password replaced."""
    for pattern, repl in _SECRETS:
        text = pattern.sub(repl, text)
    return text


class Redact(logging.Filter):
    """Rewrites each record's message (arguments merged) and fields through :func:`redact`."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):  # a bad format string: keep what was given, never crash a log call
            message = str(record.msg)
        record.msg, record.args = redact(message), None
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            record.fields = {k: redact(v) if isinstance(v, str) else v for k, v in fields.items()}
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


def _iso(created: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(created)) + f".{int(created % 1 * 1000):03d}Z"


class JsonFormatter(logging.Formatter):
    """One JSON object a line: ``time``, ``level``, ``logger``, ``message`` and the record's ``fields``."""

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "time": _iso(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            doc.update(fields)
        if record.exc_info:
            doc["error"] = redact(self.formatException(record.exc_info))
        return json.dumps(doc, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """``TIME LEVEL logger: message key=value …`` for people."""

    def format(self, record: logging.LogRecord) -> str:
        line = f"{_iso(record.created)} {record.levelname:<7} {record.name}: {record.getMessage()}"
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            line += "".join(f" {k}={v}" for k, v in fields.items() if v not in ("", None))
        if record.exc_info:
            line += "\n" + redact(self.formatException(record.exc_info))
        return line


def configure_logging(fmt: str = "text", level: int = logging.INFO, stream: Any = None) -> logging.Handler:
    """One handler on the root logger (standard error), in ``fmt`` (``text`` or ``json``), redacting;
    uvicorn's loggers propagate to it (run uvicorn with ``log_config=None``), its access log is off
    (:class:`RequestLog` writes the request lines). Returns the handler."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    handler.addFilter(Redact())
    root = logging.getLogger()
    for old in list(root.handlers):
        if getattr(old, "_garrison", False):
            root.removeHandler(old)
    handler._garrison = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = True
    logging.getLogger("uvicorn.access").disabled = True
    logging.getLogger("alembic").setLevel(max(level, logging.WARNING))  # a line per migration plugin otherwise
    # The HTTP client logs each request's URL at INFO: a Slack webhook's path is its secret, a registry
    # URL may carry a user. Its warnings still show.
    for name in ("httpx", "httpcore"):
        logging.getLogger(name).setLevel(max(level, logging.WARNING))
    return handler


def event(message: str, level: int = logging.INFO, **fields: Any) -> None:
    """A server event (started, stopped, the certificate made…) with its fields."""
    events.log(level, message, extra={"fields": fields})


# --- metrics -------------------------------------------------------------------------------------------

#: Latency buckets (seconds): the API's target is a p99 under 50 ms.
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

#: One gauge: (metric name, help, label names, [(label values, value)]).
Gauge = tuple[str, str, tuple[str, ...], list[tuple[tuple[str, ...], float]]]
#: A gauge source: called at each scrape.
GaugeSource = Callable[[], Iterable[Gauge]]


class _Gauges(Collector):
    def __init__(self, sources: list[GaugeSource]) -> None:
        self.sources = sources

    def collect(self) -> Iterator[Metric]:
        for source in self.sources:
            try:
                for name, helptext, labels, samples in source():
                    family = GaugeMetricFamily(name, helptext, labels=list(labels))
                    for values, value in samples:
                        family.add_metric(list(values), value)
                    yield family
            except Exception as e:  # a scrape must answer even when the database does not
                events.warning("metrics: a gauge source failed: %s", type(e).__name__)


class Metrics:
    """The app's registry: request counters and latency, gauges read at scrape time, build info."""

    def __init__(self, version: str) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "garrison_http_requests",
            "HTTP requests answered, by method, route template and status",
            ("method", "route", "status"),
            registry=self.registry,
        )
        self.latency = Histogram(
            "garrison_http_request_duration_seconds",
            "Time to answer an HTTP request, by method and route template",
            ("method", "route"),
            buckets=BUCKETS,
            registry=self.registry,
        )
        self.sources: list[GaugeSource] = []
        self.registry.register(_Gauges(self.sources))
        py = sys.version.split()[0]

        class _Build(Collector):
            def collect(self) -> Iterator[Metric]:
                info = InfoMetricFamily("garrison_build", "The running garrison")
                info.add_metric([], {"version": version, "python": py})
                yield info

        self.registry.register(_Build())

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        self.requests.labels(method, route, str(status)).inc()
        self.latency.labels(method, route).observe(seconds)

    def render(self) -> bytes:
        from prometheus_client import generate_latest

        return generate_latest(self.registry)


def store_gauges(store: Store) -> GaugeSource:
    """The store's counts, read at each scrape (one short read transaction)."""

    def read() -> Iterable[Gauge]:
        with store.transaction() as tx:
            alerts: list[tuple[tuple[str, ...], float]] = [
                ((s.value,), float(tx.alerts.list(AlertFilter(status=s.value), 1, 0).total)) for s in AlertStatus
            ]
            images = float(tx.images.list_images(ImageFilter(), 1, 0).total)
        yield "garrison_alerts", "Stored alerts by status", ("status",), alerts
        yield "garrison_images", "Images stored (by digest)", (), [((), images)]

    return read


def queue_gauges(counts: Callable[[], JobCounts]) -> GaugeSource:
    """The queue's jobs by task and state (``queued``, ``running``, ``done``, ``failed``), as it counts
    them: every task in every state, 0 included, so that a series exists before its first job."""

    def read() -> Iterable[Gauge]:
        samples: list[tuple[tuple[str, ...], float]] = [
            ((task, state), float(n)) for (task, state), n in sorted(counts().by_task.items())
        ]
        yield "garrison_jobs", "Jobs in the queue by task and state", ("task", "state"), samples

    return read


# --- the request middleware ----------------------------------------------------------------------------


def route_templates(routes: Iterable[Any], prefix: str = "") -> dict[int, str]:
    """``id(route)`` → its full path template, through included routers (FastAPI keeps an included
    router as one entry holding the original router and its prefix; the matched route in the ASGI scope
    is the original's, whose ``path`` lacks the prefix)."""
    found: dict[int, str] = {}
    for r in routes:
        if hasattr(r, "original_router") and hasattr(r, "include_context"):
            found.update(route_templates(r.original_router.routes, prefix + r.include_context.prefix))
        elif isinstance(getattr(r, "path", None), str):
            found[id(r)] = prefix + r.path
    return found


class RequestLog:
    """The outermost middleware: gives each request an id (``X-Request-ID``: the caller's when it is a
    plain token of up to 64 characters, else a new one, echoed in the answer), then logs one line and
    counts it once it is answered — 401s from authentication and 413s from the body limit included."""

    def __init__(self, app: ASGIApp, metrics: Metrics, routes: Callable[[], Iterable[Any]]) -> None:
        self.app = app
        self.metrics = metrics
        self.routes = routes
        self._templates: dict[int, str] = {}
        self._patterns: list[tuple[re.Pattern[str], str]] = []

    def _template(self, scope: Scope) -> str:
        """The matched route's template; for a request answered before routing (a 401, a 413) the
        template its path would match, so refusals count against the route they aimed at."""
        route = scope.get("route")
        if route is not None and id(route) not in self._templates:
            self._refresh()
        if route is not None and id(route) in self._templates:
            return self._templates[id(route)]
        if not self._patterns:
            self._refresh()
        path = str(scope.get("path", ""))
        return next((t for regex, t in self._patterns if regex.fullmatch(path)), UNMATCHED)

    def _refresh(self) -> None:
        from starlette.routing import compile_path

        self._templates = route_templates(self.routes())
        self._patterns = [(compile_path(t)[0], t) for t in sorted(set(self._templates.values()))]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        given = dict(scope.get("headers") or ()).get(b"x-request-id", b"").decode("latin-1")
        request_id = given if _REQUEST_ID.fullmatch(given) else uuid.uuid4().hex[:16]
        scope.setdefault("state", {})["request_id"] = request_id
        status = 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                message["headers"] = [*message.get("headers", []), (b"x-request-id", request_id.encode())]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            seconds = time.perf_counter() - started
            route = self._template(scope)
            method = str(scope.get("method", ""))
            self.metrics.observe(method, route, status, seconds)
            who = scope.get("state", {}).get("principal")
            user = who.user.name if isinstance(who, Principal) else ""
            client = scope.get("client")
            log.info(
                "%s %s %d",
                method,
                route,
                status,
                extra={
                    "fields": {
                        "request_id": request_id,
                        "method": method,
                        "route": route,
                        "status": status,
                        "duration_ms": round(seconds * 1000, 2),
                        "user": user,
                        "remote": client[0] if client else "",
                    }
                },
            )
