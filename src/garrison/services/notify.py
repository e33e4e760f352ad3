"""Notifications: new findings, fixed findings and new alerts to webhooks (generic JSON or a Slack
incoming webhook), delivered by jobs with retries.

An admin configures targets (:func:`create_target`); the services that notice something call
:func:`publish`, which records one ``pending`` delivery per subscribed target and queues one ``notify``
job for each; the job (:func:`run_delivery_job`) posts it, retrying what is worth retrying (timeouts,
dropped connections, 5xx, 429 with its ``Retry-After``) with :mod:`garrison.net`'s backoff, and records
every attempt on the delivery. A target's URL and headers are sealed at rest
(:mod:`garrison.services.secretbox`) and only their host and header names are ever shown or logged.
Deliveries that were sent or failed are deleted after ``delivery_retention_days`` (:func:`purge_deliveries`,
the hourly ``purge_deliveries`` job).
"""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from garrison.errors import InputError
from garrison.model.common import Severity
from garrison.services import secretbox
from garrison.services import server as svc  # module import: services.server may import this one
from garrison.store.notify import Delivery, DeliveryStatus, NotificationTarget, TargetIn, TargetNameTaken
from garrison.store.records import Page, iso_of, now_iso
from garrison.store.repos import Store

if TYPE_CHECKING:
    import httpx

    from garrison.jobs import JobContext, Queue
    from garrison.services.server import Principal
    from garrison.services.settings import ServerSettings

log = logging.getLogger("garrison.notify")

#: The events a target may subscribe to.
EVENTS = ("image.findings.new", "image.findings.fixed", "alert.new")
#: The event of a test delivery (``POST /notifications/{id}/test``); no target subscribes to it.
TEST_EVENT = "test"
#: Target kinds: a generic JSON webhook, or a Slack-compatible incoming webhook.
KINDS = ("webhook", "slack")
#: A target's least severity when none is given.
DEFAULT_MIN_SEVERITY = Severity.HIGH
#: Attempts per delivery, the first included.
ATTEMPTS = 5
#: Seconds an attempt may take (connect: 5).
TIMEOUT = 10.0
#: Limits on what an admin configures.
MAX_URL = 2048
MAX_HEADERS = 8
MAX_HEADER_VALUE = 4096
#: Limits on what a delivery stores and sends: the title, and the JSON of ``data`` (larger data keeps
#: its top-level scalars and says ``"truncated": true``).
MAX_TITLE = 1024
MAX_DATA = 64 * 1024
#: Headers an admin may not set: they are the request's own (and ``X-Garrison-*``).
_RESERVED_HEADERS = frozenset({"host", "content-type", "content-length", "transfer-encoding", "connection"})
_TOKEN_CHARS = frozenset("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")


class DeliveryError(Exception):
    """One attempt failed; ``retry`` says whether another may succeed. The message names the host
    only (a Slack URL is its credential)."""

    def __init__(self, message: str, status: int = 0, *, retry: bool, wait: float = 0.0) -> None:
        super().__init__(message)
        self.status = status
        self.retry = retry
        self.wait = wait


@dataclass(frozen=True, slots=True)
class TargetSpec:
    """What an admin asks for (``POST /notifications``), secrets in clear: sealed by :func:`create_target`."""

    name: str
    kind: str
    url: str
    headers: Mapping[str, str]
    events: tuple[str, ...]
    min_severity: str = DEFAULT_MIN_SEVERITY.name
    enabled: bool = True


# --- targets -------------------------------------------------------------------------------------


def _host_of(url: str) -> str:
    """host[:port] of an http(s) URL; InputError (naming no part of the URL) otherwise."""
    if len(url) > MAX_URL or any(not ch.isprintable() or ch.isspace() for ch in url):
        raise InputError(f"url: an http:// or https:// URL of at most {MAX_URL} characters, without spaces")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise InputError("url: does not parse as a URL") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InputError("url: an http:// or https:// URL with a host")
    host = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
    return host if port is None else f"{host}:{port}"


def _headers(headers: Mapping[str, str]) -> dict[str, str]:
    if len(headers) > MAX_HEADERS:
        raise InputError(f"headers: at most {MAX_HEADERS}")
    out: dict[str, str] = {}
    for name, value in headers.items():
        if not name or len(name) > 128 or not set(name) <= _TOKEN_CHARS:
            raise InputError(f"header name {name[:64]!r}: letters, digits and !#$%&'*+-.^_`|~ only")
        if name.lower() in _RESERVED_HEADERS or name.lower().startswith("x-garrison-"):
            raise InputError(f"header {name}: set by garrison itself")
        if any(name.lower() == other.lower() for other in out):
            raise InputError(f"header {name}: given twice")
        if len(value) > MAX_HEADER_VALUE or any(ch in "\r\n\0" or not ch.isprintable() for ch in value):
            raise InputError(f"header {name}: a value of printable characters (at most {MAX_HEADER_VALUE})")
        out[name] = value
    return out


def _severity(text: str) -> Severity:
    try:
        return Severity.parse(text)
    except ValueError:
        names = ", ".join(s.name for s in Severity)
        raise InputError(f"min_severity {text[:32]!r}: one of {names}") from None


def _name(text: str) -> str:
    name = text.strip()
    if not name or len(name) > 128 or any(not ch.isprintable() for ch in name):
        raise InputError("name: 1 to 128 printable characters")
    return name


def _events(events: tuple[str, ...]) -> tuple[str, ...]:
    if not events or any(e not in EVENTS for e in events):
        raise InputError(f"events: one or more of {', '.join(EVENTS)}")
    return tuple(dict.fromkeys(events))


def _sealed_headers(settings: ServerSettings, headers: Mapping[str, str]) -> tuple[tuple[str, ...], str]:
    """(the names, all of them sealed as one JSON object; "" for none)."""
    checked = _headers(headers)
    return tuple(checked), secretbox.seal(settings, json.dumps(checked)) if checked else ""


def create_target(store: Store, settings: ServerSettings, who: Principal, spec: TargetSpec) -> NotificationTarget:
    """Add a target; the URL and headers are sealed before they reach the store."""
    name, events, severity = _name(spec.name), _events(spec.events), _severity(spec.min_severity)
    if spec.kind not in KINDS:
        raise InputError(f"kind {spec.kind[:32]!r}: one of {', '.join(KINDS)}")
    host = _host_of(spec.url)
    header_names, headers_sealed = _sealed_headers(settings, spec.headers)
    target = TargetIn(
        name=name,
        kind=spec.kind,
        host=host,
        url_sealed=secretbox.seal(settings, spec.url),
        header_names=header_names,
        headers_sealed=headers_sealed,
        events=events,
        min_severity=severity.name,
        enabled=spec.enabled,
    )
    at = now_iso()
    with store.transaction() as tx:
        try:
            made = tx.notifications.add_target(target, who.user.name, at)
        except TargetNameTaken as e:
            raise svc.Refused(str(e)) from None
        detail = {"kind": made.kind, "host": host, "events": list(made.events), "min_severity": made.min_severity}
        tx.audit.append(at, who.user.name, "notification.create", "notification", str(made.id), "", detail)
        return made


@dataclass(frozen=True, slots=True)
class TargetChange:
    """``PATCH /notifications/{id}``: what to change (None keeps it). A new ``url`` or ``headers`` replaces
    the old one whole (sealed again); ``headers`` ``{}`` drops them. The kind stays."""

    name: str | None = None
    url: str | None = None
    headers: Mapping[str, str] | None = None
    events: tuple[str, ...] | None = None
    min_severity: str | None = None
    enabled: bool | None = None


def update_target(
    store: Store, settings: ServerSettings, who: Principal, target_id: int, change: TargetChange
) -> NotificationTarget:
    """Change a target; pending deliveries go to what it is when they are sent. The audit log says which
    fields changed, never to which secret."""
    values: dict[str, Any] = {}
    if change.name is not None:
        values["name"] = _name(change.name)
    if change.url is not None:
        values["host"] = _host_of(change.url)
        values["url_sealed"] = secretbox.seal(settings, change.url)
    if change.headers is not None:
        values["header_names"], values["headers_sealed"] = _sealed_headers(settings, change.headers)
    if change.events is not None:
        values["events"] = _events(change.events)
    if change.min_severity is not None:
        values["min_severity"] = _severity(change.min_severity).name
    if change.enabled is not None:
        values["enabled"] = change.enabled
    changed = sorted(
        f for f in ("name", "url", "headers", "events", "min_severity", "enabled") if getattr(change, f) is not None
    )
    at = now_iso()
    with store.transaction() as tx:
        if tx.notifications.get_target(target_id) is None:
            raise svc.NotFound(f"no notification target {target_id}")
        try:
            updated = tx.notifications.update_target(target_id, values)
        except TargetNameTaken as e:
            raise svc.Refused(str(e)) from None
        assert updated is not None
        detail = {"changed": changed, "host": updated.host, "enabled": updated.enabled}
        tx.audit.append(at, who.user.name, "notification.update", "notification", str(target_id), "", detail)
        return updated


def list_targets(store: Store, limit: int = 100, offset: int = 0) -> Page[NotificationTarget]:
    with store.transaction(readonly=True) as tx:
        return tx.notifications.list_targets(limit, offset)


def get_target(store: Store, target_id: int) -> NotificationTarget:
    with store.transaction(readonly=True) as tx:
        found = tx.notifications.get_target(target_id)
    if found is None:
        raise svc.NotFound(f"no notification target {target_id}")
    return found


def delete_target(store: Store, who: Principal, target_id: int, reason: str = "") -> NotificationTarget:
    """Delete a target and its deliveries (queued jobs for them find nothing and end)."""
    at = now_iso()
    with store.transaction() as tx:
        found = tx.notifications.get_target(target_id)
        if found is None:
            raise svc.NotFound(f"no notification target {target_id}")
        tx.notifications.delete_target(target_id)
        detail = {"name": found.name, "host": found.host}
        tx.audit.append(at, who.user.name, "notification.delete", "notification", str(target_id), reason, detail)
        return found


def list_deliveries(
    store: Store, target_id: int, status: str = "", limit: int = 100, offset: int = 0
) -> Page[Delivery]:
    if status and status not in {s.value for s in DeliveryStatus}:
        raise InputError(f"status {status[:32]!r}: one of {', '.join(s.value for s in DeliveryStatus)}")
    with store.transaction(readonly=True) as tx:
        if tx.notifications.get_target(target_id) is None:
            raise svc.NotFound(f"no notification target {target_id}")
        return tx.notifications.list_deliveries(target_id, status, limit, offset)


# --- publishing ----------------------------------------------------------------------------------


def _bounded(data: Mapping[str, Any]) -> dict[str, Any]:
    """``data`` as stored: JSON-safe, and at most :data:`MAX_DATA` bytes of it."""
    safe: dict[str, Any] = json.loads(json.dumps(dict(data), default=str))
    if len(json.dumps(safe)) <= MAX_DATA:
        return safe
    small = {k: v for k, v in safe.items() if isinstance(v, str | int | float | bool) and len(str(v)) <= 1024}
    return {**small, "truncated": True}


def _passes(target: NotificationTarget, data: Mapping[str, Any]) -> bool:
    """Whether the event's severity (``data["severity"]``; none or an unknown name: UNKNOWN) reaches the
    target's minimum."""
    try:
        sev = Severity.parse(str(data.get("severity", "")))
    except ValueError:
        sev = Severity.UNKNOWN
    return sev >= Severity[target.min_severity]


def publish(store: Store, queue: Queue | None, event: str, title: str, data: Mapping[str, Any]) -> int:
    """Queue one delivery of ``event`` (``image.findings.new``, ``image.findings.fixed``, ``alert.new``)
    to every enabled target that subscribes to it and whose minimum severity ``data["severity"]`` (a
    severity name: the highest of the findings, the alert's) reaches; returns how many were queued.
    ``title`` is the one-line human summary (Slack's ``text``); ``data`` the JSON details (never
    secrets; large data is cut to its top-level scalars). Without a queue nothing is sent (0).

    The deliveries are committed before their jobs are queued, so a job never looks for a row that is
    not there yet; a delivery whose job could not be queued is marked failed."""
    if event not in EVENTS:
        raise ValueError(f"unknown notification event {event!r}")
    if queue is None:
        return 0
    title = " ".join(title.split())[:MAX_TITLE]
    stored = _bounded(data)
    at = now_iso()
    with store.transaction() as tx:
        targets = [t for t in tx.notifications.subscribed(event) if _passes(t, stored)]
        deliveries = [tx.notifications.add_delivery(t.id, event, title, stored, at) for t in targets]
    queued = 0
    for d in deliveries:
        try:
            queue.enqueue("notify", {"delivery": d.id})
            queued += 1
        except Exception as e:  # the queue's database went away: say so on the delivery, lose nothing else
            log.error("could not queue notification delivery %d: %s", d.id, type(e).__name__)
            with store.transaction() as tx:
                tx.notifications.record_attempt(d.id, DeliveryStatus.FAILED, 0, "could not be queued", now_iso())
    return queued


# --- delivering ----------------------------------------------------------------------------------


def _server() -> dict[str, str]:
    from garrison import __version__

    return {"name": "garrison", "version": __version__, "host": socket.gethostname()}


def webhook_body(delivery: Delivery) -> dict[str, Any]:
    """The generic JSON body: what happened, its summary and details, when, and which server says so."""
    return {
        "event": delivery.event,
        "title": delivery.title,
        "data": delivery.data,
        "time": delivery.created_at,
        "server": _server(),
        "delivery": delivery.id,
    }


def _mrkdwn(text: str) -> str:
    """Slack's mrkdwn needs only ``&``, ``<`` and ``>`` escaped."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_body(delivery: Delivery) -> dict[str, Any]:
    """A Slack incoming webhook's body: ``text`` (the notification's fallback) and blocks: a header,
    the details as fields, and the event and time as context. Slack's limits are kept (header 150
    characters, a field 2000, ten fields)."""
    fields = []
    for key, value in delivery.data.items():
        if isinstance(value, dict | list):
            value = json.dumps(value, separators=(",", ":"))
        fields.append({"type": "mrkdwn", "text": _mrkdwn(f"*{key}*\n{value}")[:2000]})
        if len(fields) == 10:
            break
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": delivery.title[:150] or delivery.event}},
    ]
    if fields:
        blocks.append({"type": "section", "fields": fields})
    context = f"garrison · {delivery.event} · {delivery.created_at}"
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": _mrkdwn(context)}]})
    return {"text": delivery.title or delivery.event, "blocks": blocks}


def _post(
    http: httpx.Client, target: NotificationTarget, url: str, headers: dict[str, str], body: bytes, attempt: int
) -> int:
    """One attempt: the HTTP status of a 2xx answer, else :class:`DeliveryError`."""
    import httpx

    from garrison import net

    def build() -> httpx.Request:
        return http.build_request("POST", url, content=body, headers=headers)

    try:
        resp = net.send(http, build, attempts=1)
    except httpx.TimeoutException:
        raise DeliveryError(f"{target.host}: timed out", retry=True, wait=net.backoff(attempt)) from None
    except httpx.TransportError as e:
        raise DeliveryError(f"{target.host}: {type(e).__name__}", retry=True, wait=net.backoff(attempt)) from None
    try:
        status = resp.status_code
        if 200 <= status < 300:
            return status
        if status in net.BUSY:
            wait = net.backoff(attempt, resp.headers.get("retry-after", ""))
            raise DeliveryError(f"{target.host} answered {status}", status, retry=True, wait=wait)
        hint = " (redirects are not followed)" if 300 <= status < 400 else ""
        raise DeliveryError(f"{target.host} answered {status}{hint}", status, retry=False)
    finally:
        resp.close()


def _request(
    settings: ServerSettings, target: NotificationTarget, delivery: Delivery
) -> tuple[str, dict[str, str], bytes]:
    url = secretbox.unseal(settings, target.url_sealed)
    extra: dict[str, str] = (
        json.loads(secretbox.unseal(settings, target.headers_sealed)) if target.headers_sealed else {}
    )
    body = slack_body(delivery) if target.kind == "slack" else webhook_body(delivery)
    headers = {
        **extra,
        "Content-Type": "application/json",
        "X-Garrison-Event": delivery.event,
        "X-Garrison-Delivery": str(delivery.id),
    }
    return url, headers, json.dumps(body).encode()


_client_lock = threading.Lock()
_client: httpx.Client | None = None


def _http() -> httpx.Client:
    """The process's one client for deliveries (httpx clients are thread-safe). Loading the system CA
    store took ~0.1 s, most of a delivery, when each made its own client; shared, its pool also keeps
    connections to a webhook host alive from one delivery to the next."""
    global _client
    import httpx

    from garrison import net
    from garrison.config import Settings

    with _client_lock:
        if _client is None:
            timeout = httpx.Timeout(TIMEOUT, connect=5.0)
            _client = net.client(Settings(), timeout=timeout, follow_redirects=False)
        return _client


def deliver(store: Store, settings: ServerSettings, delivery_id: int, *, attempts: int = ATTEMPTS) -> Delivery | None:
    """Send a pending delivery, up to ``attempts`` attempts in all (a run after a crash goes on from the
    attempts already recorded), recording each; the delivery as it ends (None when it, or its target,
    is gone). Safe to run again: a delivery no longer pending is left as it is."""
    with store.transaction() as tx:
        delivery = tx.notifications.get_delivery(delivery_id)
        target = None if delivery is None else tx.notifications.get_target(delivery.target_id)
    if delivery is None or target is None:
        return None
    if delivery.status is not DeliveryStatus.PENDING:
        return delivery
    try:
        url, headers, body = _request(settings, target, delivery)
    except secretbox.SecretKeyError as e:
        with store.transaction() as tx:
            return tx.notifications.record_attempt(delivery_id, DeliveryStatus.FAILED, 0, str(e), now_iso())
    http = _http()
    attempt = delivery.attempts
    while True:
        try:
            status = _post(http, target, url, headers, body, attempt)
        except DeliveryError as e:
            attempt += 1
            final = not e.retry or attempt >= attempts
            outcome = DeliveryStatus.FAILED if final else DeliveryStatus.PENDING
            with store.transaction() as tx:
                current = tx.notifications.record_attempt(delivery_id, outcome, e.status, str(e), now_iso())
            if final or current is None:
                if current is not None:
                    log.warning(
                        "notification %d to %s failed after %d attempts: %s", delivery_id, target.host, attempt, e
                    )
                return current
            time.sleep(e.wait)
            continue
        with store.transaction() as tx:
            return tx.notifications.record_attempt(delivery_id, DeliveryStatus.DELIVERED, status, "", now_iso())


def run_delivery_job(ctx: JobContext, payload: dict[str, Any]) -> None:
    """The ``notify`` task: ``{"delivery": id}``. Delivery failures are recorded on the delivery, not
    raised (the retries are this job's own, with the target's ``Retry-After``); only a failure of the
    store propagates, so that the queue runs the job again."""
    delivery_id = payload.get("delivery")
    if not isinstance(delivery_id, int) or isinstance(delivery_id, bool):
        log.error("notify job without a delivery id: %r", sorted(payload))
        return
    deliver(ctx.store, ctx.settings, delivery_id)


def purge_deliveries(store: Store, settings: ServerSettings, at: datetime | None = None) -> int:
    """Delete the deliveries that were sent or failed more than ``settings.delivery_retention_days`` before
    ``at`` (now); pending ones stay, however old (their job may still run). How many were deleted."""
    when = (at or datetime.now(UTC)) - timedelta(days=settings.delivery_retention_days)
    with store.transaction() as tx:
        gone = tx.notifications.purge_deliveries(iso_of(when))
    if gone:
        log.info("%d notification deliveries older than %d days deleted", gone, settings.delivery_retention_days)
    return gone


def run_purge_job(ctx: JobContext, payload: dict[str, Any]) -> None:
    """The ``purge_deliveries`` task (queued every hour by both queues; ``{}``)."""
    purge_deliveries(ctx.store, ctx.settings)


def send_test(
    store: Store,
    settings: ServerSettings,
    who: Principal,
    target_id: int,
) -> Delivery:
    """``POST /notifications/{id}/test``: one ``test`` delivery to the target, sent now, in one attempt
    (the answer says at once whether the URL and headers work); recorded like any other."""
    at = now_iso()
    with store.transaction() as tx:
        target = tx.notifications.get_target(target_id)
        if target is None:
            raise svc.NotFound(f"no notification target {target_id}")
        data = {"severity": "UNKNOWN", "requested_by": who.user.name, "target": target.name}
        made = tx.notifications.add_delivery(
            target_id, TEST_EVENT, f"garrison test notification for {target.name}", data, at
        )
        tx.audit.append(
            at, who.user.name, "notification.test", "notification", str(target_id), "", {"delivery": made.id}
        )
    sent = deliver(store, settings, made.id, attempts=1)
    if sent is None:
        raise svc.NotFound(f"no notification target {target_id}")
    return sent
