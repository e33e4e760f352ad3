"""The server's use cases: users and tokens, authentication, alerts (ingestion from the audit webhook
and node sensors, suppression rules applied as they arrive, triage) and the audit log. The routers and
``garrison server`` call these; they take a :class:`~garrison.store.repos.Store` and the acting user,
write every change to the audit log in the change's own transaction, and raise the errors below (the
server turns them into 4xx answers, the CLI into messages).

Roles are checked by the server's dependencies; what depends on *which* object (a token of one's own) is
checked here.
"""

from __future__ import annotations

import fnmatch
import hashlib
import hmac
import json
import logging
import secrets
import threading
import time
import weakref
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from garrison.errors import GarrisonError, InputError, UsageError
from garrison.jobs import Queue
from garrison.model.common import Severity
from garrison.model.runtime import Alert, AlertEvent, Entities, alert_finding
from garrison.runtime.engine import RuleSet
from garrison.runtime.k8saudit import NotAnAuditEvent, parse_event
from garrison.services.runtime import evaluate_events
from garrison.store.clusters import SuppressionRule
from garrison.store.records import (
    AlertFilter,
    AlertIn,
    AlertStatus,
    AuditEntry,
    Folded,
    Page,
    Role,
    StoredAlert,
    Token,
    User,
    iso_of,
    normalize_iso,
    now_iso,
)
from garrison.store.repos import Conflict, Repositories, Store

#: Every token starts with this, so secret scanners (garrison's own included) can recognise one.
TOKEN_PREFIX = "garrison_"  # noqa: S105 - a prefix, not a token
#: Characters of the token kept in clear to recognise it in lists (the prefix and 4 random characters).
SHOWN = len(TOKEN_PREFIX) + 4
#: The actor of changes made by ``garrison server`` on the machine itself.
CLI_ACTOR = "cli"
#: Longest bearer token looked up (ours are 52 characters long).
MAX_TOKEN = 256
#: Longest user and token names.
MAX_NAME = 128
#: Most alerts one node-sensor request may carry (the sensor's webhook sink sends 100 per batch).
MAX_NODE_ALERTS = 10_000
#: Most ``alert.new`` notifications one request publishes (one each; a flood is summarised).
MAX_NOTIFY = 20
#: The reason of the audit entry of a resolved alert that happened again (``alert.recur``).
RECURRED_REASON = "happened again after it was resolved"

log = logging.getLogger("garrison.server")


class NotFound(GarrisonError):
    """No such user, token or alert (or not one the caller may see)."""


class Forbidden(GarrisonError):
    """The caller's role or ownership does not allow it."""


class Unauthenticated(GarrisonError):
    """No token, or a token that is unknown, revoked, expired or of a disabled user."""


class Refused(GarrisonError):
    """The request conflicts with the state (a taken name, disabling the last admin)."""


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the user behind the token."""

    user: User
    token_id: int

    @property
    def role(self) -> Role:
        return self.user.role


@dataclass(frozen=True, slots=True)
class NewToken:
    """A token just created: ``secret`` is shown this once and never again."""

    token: Token
    secret: str


@dataclass(frozen=True, slots=True)
class Ingested:
    """What one audit webhook or node sensor request did."""

    events: int
    matches: int
    alerts: int
    new_alerts: int
    #: Alerts a suppression rule dismissed as they arrived (stored dismissed, never dropped).
    suppressed: int = 0
    #: Resolved alerts that happened again and are active again (notified like new ones).
    recurred: int = 0


def hash_token(secret: str) -> str:
    """SHA-256 (hex) of a token: what the store keeps. A token is 256 random bits, so a fast hash is
    enough (no guessing is feasible; a slow KDF only protects low-entropy passwords)."""
    return hashlib.sha256(secret.encode()).hexdigest()


def _name(text: str, what: str) -> str:
    name = text.strip()
    if not name or len(name) > MAX_NAME or any(not ch.isprintable() for ch in name):
        raise InputError(f"{what}: 1 to {MAX_NAME} printable characters")
    return name


def _role(text: str) -> Role:
    try:
        return Role(text)
    except ValueError:
        raise InputError(f"role {text!r}: one of {', '.join(r.value for r in Role)}") from None


def issue_token(tx: Repositories, user: User, name: str, expires_days: int | None, at: str) -> NewToken:
    """A new token of ``user`` in ``tx`` (the caller writes the audit entry)."""
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    expires = ""
    if expires_days is not None:
        if not 1 <= expires_days <= 3650:
            raise InputError("expires_days: 1 to 3650")
        expires = iso_of(datetime.now(UTC) + timedelta(days=expires_days))
    tok = tx.tokens.add(user.id, _name(name, "token name"), secret[:SHOWN], hash_token(secret), at, expires)
    return NewToken(tok, secret)


# --- set-up and users ----------------------------------------------------------------------------------


def init_admin(store: Store, name: str = "admin") -> NewToken:
    """``garrison server init``: the first admin and its token. Refused when an admin exists."""
    at = now_iso()
    with store.transaction() as tx:
        if tx.users.count_admins():
            raise Refused("the server already has an admin: use `garrison server user add` or the API")
        try:
            user = tx.users.add(_name(name, "user name"), Role.ADMIN, at)
        except Conflict as e:
            raise Refused(str(e)) from None
        new = issue_token(tx, user, "initial", None, at)
        tx.audit.append(at, CLI_ACTOR, "user.create", "user", str(user.id), "server init", {"role": Role.ADMIN.value})
        tx.audit.append(at, CLI_ACTOR, "token.create", "token", str(new.token.id), "", {"user": user.name})
        return new


def list_users(store: Store, limit: int = 100, offset: int = 0) -> Page[User]:
    with store.transaction(readonly=True) as tx:
        return tx.users.list(limit, offset)


def create_user(
    store: Store,
    actor: str,
    name: str,
    role: str,
    token_name: str = "default",  # noqa: S107 - a label
    cluster: str = "",
) -> tuple[User, NewToken]:
    """A user and its first token (shown once). ``cluster``: an agent's cluster (agents only)."""
    at = now_iso()
    r = _role(role)
    if cluster and r is not Role.AGENT:
        raise InputError("only an agent is scoped to a cluster")
    cluster = _name(cluster, "cluster") if cluster else ""
    with store.transaction() as tx:
        try:
            user = tx.users.add(_name(name, "user name"), r, at, cluster)
        except Conflict as e:
            raise Refused(str(e)) from None
        new = issue_token(tx, user, token_name, None, at)
        detail = {"name": user.name, "role": r.value, **({"cluster": cluster} if cluster else {})}
        tx.audit.append(at, actor, "user.create", "user", str(user.id), "", detail)
        tx.audit.append(at, actor, "token.create", "token", str(new.token.id), "", {"user": user.name})
        return user, new


def disable_user(store: Store, actor: str, user_id: int, reason: str = "") -> User:
    """Disable a user: every token of theirs stops working. The last enabled admin cannot be disabled."""
    at = now_iso()
    with store.transaction() as tx:
        user = tx.users.get(user_id)
        if user is None:
            raise NotFound(f"no user {user_id}")
        if user.role is Role.ADMIN and not user.disabled and tx.users.count_admins() <= 1:
            raise Refused("that is the last enabled admin")
        changed = tx.users.set_disabled(user_id, True)
        assert changed is not None
        tx.audit.append(at, actor, "user.disable", "user", str(user_id), reason, {"name": user.name})
    forget_tokens(store)
    return changed


# --- tokens ------------------------------------------------------------------------------------------


class TokenCache:
    """The principals of tokens checked in the last ``ttl`` seconds, by token hash (never the token), so
    that a caller sending 200 requests a second (the API server calling the admission webhook, an agent
    posting audit batches) is not read from the database 200 times a second. Only valid tokens are
    kept; the token's expiry is still checked at each use. :func:`revoke_token` and :func:`disable_user`
    empty the cache of their store, so a change through this process takes effect at once; a change
    made by another process (the CLI, a second server) within ``ttl`` — as Kubernetes' own webhook token
    authenticator caches for two minutes. At most ``capacity`` tokens, the oldest dropped first."""

    def __init__(self, ttl: float, capacity: int = 4096) -> None:
        self.ttl = ttl
        self.capacity = capacity
        self._entries: dict[str, tuple[float, str, Principal]] = {}
        self._lock = threading.Lock()

    def get(self, digest: str) -> Principal | None:
        """The principal of the token hashed to ``digest`` (:func:`token_digest`) if it was checked
        within ``ttl``, else None."""
        hit = self._entries.get(digest)
        if hit is None:
            return None
        until, expires_at, who = hit
        if time.monotonic() >= until or (expires_at and expires_at <= now_iso()):
            with self._lock:
                self._entries.pop(digest, None)
            return None
        return who

    def put(self, digest: str, who: Principal, expires_at: str) -> None:
        if self.ttl <= 0:
            return
        with self._lock:
            while len(self._entries) >= self.capacity:
                del self._entries[next(iter(self._entries))]
            self._entries[digest] = (time.monotonic() + self.ttl, expires_at, who)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


_CACHES: weakref.WeakKeyDictionary[Store, TokenCache] = weakref.WeakKeyDictionary()
_CACHES_LOCK = threading.Lock()


def token_cache(store: Store, ttl: float) -> TokenCache:
    """The token cache of ``store`` (one per store, so that a revocation empties the one that matters),
    made with ``ttl`` on first use."""
    with _CACHES_LOCK:
        cache = _CACHES.get(store)
        if cache is None:
            cache = _CACHES[store] = TokenCache(ttl)
        return cache


def forget_tokens(store: Store) -> None:
    """Empty ``store``'s token cache: every service that revokes a token or disables a user calls this
    after its transaction."""
    cache = _CACHES.get(store)
    if cache is not None:
        cache.clear()


def token_digest(secret: str) -> str:
    """The hash a bearer token is stored and cached under; :class:`Unauthenticated` for a text that
    cannot be one of ours (checked before any hashing or lookup)."""
    if not secret.startswith(TOKEN_PREFIX) or len(secret) > MAX_TOKEN:
        raise Unauthenticated("invalid token")
    return hash_token(secret)


def authenticate(store: Store, secret: str, cache: TokenCache | None = None) -> Principal:
    """The user behind a bearer token (from ``cache`` when it was checked within the cache's time).
    Raises :class:`Unauthenticated` (one message for every reason, so that the answer says nothing
    about which tokens exist)."""
    return authenticate_digest(store, token_digest(secret), cache)


def authenticate_digest(store: Store, digest: str, cache: TokenCache | None = None) -> Principal:
    """:func:`authenticate` for a token already hashed with :func:`token_digest` (the server's
    middleware hashes it once, looks in the cache without a thread, and comes here on a miss)."""
    if cache is not None and (who := cache.get(digest)) is not None:
        return who
    with store.transaction(readonly=True) as tx:
        found = tx.tokens.by_hash(digest)
        if found is None or not hmac.compare_digest(found[1], digest):
            raise Unauthenticated("invalid token")
        tok = found[0]
        if tok.revoked_at or (tok.expires_at and tok.expires_at <= now_iso()):
            raise Unauthenticated("invalid token")
        user = tx.users.get(tok.user_id)
        if user is None or user.disabled:
            raise Unauthenticated("invalid token")
        who = Principal(user, tok.id)
    if cache is not None:
        cache.put(digest, who, tok.expires_at or "")
    return who


def list_tokens(store: Store, who: Principal, limit: int = 100, offset: int = 0) -> Page[Token]:
    """One's own tokens; an admin sees everyone's."""
    with store.transaction(readonly=True) as tx:
        return tx.tokens.list(None if who.role is Role.ADMIN else who.user.id, limit, offset)


def create_token(
    store: Store, who: Principal | None, name: str, user_name: str = "", expires_days: int | None = None
) -> NewToken:
    """A token for oneself, or (admin, or ``who`` None: the CLI on the machine) for ``user_name``."""
    at = now_iso()
    actor = who.user.name if who else CLI_ACTOR
    with store.transaction() as tx:
        if user_name and (who is None or who.role is Role.ADMIN or user_name == who.user.name):
            user = tx.users.by_name(user_name)
            if user is None:
                raise NotFound(f"no user {user_name!r}")
        elif user_name:
            raise Forbidden("only an admin creates tokens for another user")
        elif who is not None:
            user = who.user
        else:
            raise UsageError("name the user the token is for")
        if user.disabled:
            raise Refused(f"user {user.name!r} is disabled")
        new = issue_token(tx, user, name, expires_days, at)
        tx.audit.append(at, actor, "token.create", "token", str(new.token.id), "", {"user": user.name})
        return new


def revoke_token(store: Store, who: Principal | None, token_id: int, reason: str = "") -> Token:
    """Revoke one's own token (an admin or the CLI: anyone's). Another user's token is "not found"."""
    at = now_iso()
    with store.transaction() as tx:
        tok = tx.tokens.get(token_id)
        if tok is None or (who is not None and who.role is not Role.ADMIN and tok.user_id != who.user.id):
            raise NotFound(f"no token {token_id}")
        changed = tx.tokens.revoke(token_id, at)
        assert changed is not None
        tx.audit.append(at, who.user.name if who else CLI_ACTOR, "token.revoke", "token", str(token_id), reason)
    forget_tokens(store)
    return changed


# --- alerts ------------------------------------------------------------------------------------------

#: ``open`` is what earlier versions called ``active``; the filter still takes it.
_STATUS_ALIASES = {"open": AlertStatus.ACTIVE.value}


def alert_filter(
    status: str = "",
    severity: str = "",
    rule: str = "",
    namespace: str = "",
    cluster: str = "",
    since: str = "",
    until: str = "",
) -> AlertFilter:
    """Validated filters (times in any ISO 8601 form)."""
    status = _STATUS_ALIASES.get(status, status)
    if status and status not in {s.value for s in AlertStatus}:
        raise InputError(f"status {status!r}: one of {', '.join(s.value for s in AlertStatus)}")
    if severity and severity.upper() not in Severity.__members__:
        raise InputError(f"severity {severity!r}: one of {', '.join(reversed(Severity.__members__))}")
    try:
        since_n = normalize_iso(since) if since else ""
        until_n = normalize_iso(until) if until else ""
    except ValueError:
        raise InputError("since/until: ISO 8601 times (2026-12-01T22:44:22Z)") from None
    return AlertFilter(status, severity.upper(), rule, namespace, cluster, since_n, until_n)


def list_alerts(store: Store, f: AlertFilter, limit: int = 100, offset: int = 0) -> Page[StoredAlert]:
    with store.transaction(readonly=True) as tx:
        return tx.alerts.list(f, limit, offset)


def get_alert(store: Store, alert_id: int) -> StoredAlert:
    with store.transaction(readonly=True) as tx:
        a = tx.alerts.get(alert_id)
    if a is None:
        raise NotFound(f"no alert {alert_id}")
    return a


_ACTIONS = {
    AlertStatus.DISMISSED: "alert.dismiss",
    AlertStatus.RESOLVED: "alert.resolve",
    AlertStatus.ACTIVE: "alert.reopen",
}


def _triage(store: Store, who: Principal, alert_id: int, status: AlertStatus, reason: str) -> StoredAlert:
    at = now_iso()
    with store.transaction() as tx:
        a = tx.alerts.get(alert_id)
        if a is None:
            raise NotFound(f"no alert {alert_id}")
        if a.status is status:
            raise Refused(f"alert {alert_id} is already {status.value}")
        changed = tx.alerts.set_status(alert_id, status, who.user.name, reason, at)
        assert changed is not None
        detail = {"rule": a.rule, "from": a.status.value, "to": status.value}
        tx.audit.append(at, who.user.name, _ACTIONS[status], "alert", str(alert_id), reason, detail)
        return changed


def dismiss_alert(store: Store, who: Principal, alert_id: int, reason: str) -> StoredAlert:
    """Dismiss an alert, with a reason (required: it goes to the alert and the audit log)."""
    if not reason.strip():
        raise InputError("a dismissal needs a reason")
    return _triage(store, who, alert_id, AlertStatus.DISMISSED, reason.strip())


def resolve_alert(store: Store, who: Principal, alert_id: int, reason: str = "") -> StoredAlert:
    """Mark an alert resolved (the cause was fixed). If it happens again it becomes active again."""
    return _triage(store, who, alert_id, AlertStatus.RESOLVED, reason.strip())


def reopen_alert(store: Store, who: Principal, alert_id: int, reason: str = "") -> StoredAlert:
    """A dismissed or resolved alert back to active."""
    return _triage(store, who, alert_id, AlertStatus.ACTIVE, reason.strip())


def _alert_in(a: Alert) -> AlertIn:
    return AlertIn(
        fingerprint=alert_finding(a).fingerprint,
        rule=a.rule,
        severity=a.severity.name,
        priority=a.priority,
        source=a.source,
        output=a.output,
        cluster=a.entities.cluster,
        namespace=a.entities.namespace,
        entities={k: v for k, v in asdict(a.entities).items() if v},
        count=a.count,
        first_seen=normalize_iso(a.first_seen),
        last_seen=normalize_iso(a.last_seen),
    )


def suppression_for(alert: AlertIn, rules: Sequence[SuppressionRule]) -> SuppressionRule | None:
    """The first rule (oldest first) whose every given field matches the alert: globs (``fnmatch``,
    case-sensitive) on the rule name, the namespace, the image, the user and the cluster."""
    e = alert.entities
    for r in rules:
        pairs = (
            (r.rule, alert.rule),
            (r.namespace, alert.namespace),
            (r.image, e.get("image", "")),
            (r.user, e.get("user", "")),
            (r.cluster, alert.cluster),
        )
        if all(not pattern or fnmatch.fnmatchcase(value, pattern) for pattern, value in pairs):
            return r
    return None


def _scope(who: Principal, cluster: str) -> str:
    """The events' cluster: a scoped agent's own (naming another is :class:`Forbidden`), else ``cluster``."""
    if who.user.cluster:
        if cluster and cluster != who.user.cluster:
            raise Forbidden(f"this token posts for cluster {who.user.cluster!r} only")
        return who.user.cluster
    return cluster


def fold_alerts(
    store: Store,
    who: Principal,
    alerts: Sequence[AlertIn],
    source: str,
    detail: dict[str, Any],
    queue: Queue | None = None,
) -> tuple[int, int, int]:
    """Fold ``alerts`` into the store in one transaction (suppression rules applied: a matching alert is
    stored dismissed by ``suppression:<id>`` and the rule's count goes up), audit-logged: the ingestion,
    and each resolved alert that happened again and is active again (``alert.recur``, beside the
    triage that resolved it). Then ``alert.new`` for each new active alert and each recurred one
    (``"recurred": true``): a recurrence needs a look as much as a first sighting. A dismissed alert
    that happens again stays dismissed and is not notified (dismissal means "do not tell me again").
    Returns (new alerts, alerts dismissed by a rule, resolved alerts active again)."""
    if not alerts:
        return 0, 0, 0
    at = now_iso()
    with store.transaction() as tx:
        rules = tx.clusters.active_suppressions(at)
        items = []
        for a in alerts:
            rule = suppression_for(a, rules)
            items.append((a, (rule.id, rule.reason) if rule else None))
        folded = list(zip(alerts, tx.alerts.fold_many(items, at), strict=True))
        caught: dict[int, int] = {}
        for _, f in folded:
            if f.caught_by:
                caught[f.caught_by] = caught.get(f.caught_by, 0) + 1
        for rid, n in caught.items():
            tx.clusters.count_caught(rid, n, at)
        new = sum(1 for _, f in folded if f.new)
        suppressed = sum(caught.values())
        recurred = [(a, f) for a, f in folded if f.recurred]
        for a, f in recurred:
            change = {"rule": a.rule, "from": AlertStatus.RESOLVED.value, "to": f.status.value, "count": a.count}
            tx.audit.append(at, who.user.name, "alert.recur", "alert", str(f.id), RECURRED_REASON, change)
        full = {**detail, "alerts": len(alerts), "new": new, "suppressed": suppressed, "recurred": len(recurred)}
        tx.audit.append(at, who.user.name, "events.ingest", "events", source, "", full)
    notable = [(a, f) for a, f in folded if (f.new or f.recurred) and f.status is AlertStatus.ACTIVE]
    _notify_alerts(store, queue, notable)
    return new, suppressed, len(recurred)


def _notify_alerts(store: Store, queue: Queue | None, notable: Sequence[tuple[AlertIn, Folded]]) -> None:
    """``alert.new`` after the commit: one per new or recurred alert (the first :data:`MAX_NOTIFY`, then
    one summary). A failure to queue a notification never undoes or fails the ingestion: it is logged."""
    from garrison.services import notify

    if not notable:
        return
    try:
        with store.transaction(readonly=True) as tx:
            if not tx.notifications.subscribed("alert.new"):
                return  # nobody listens: no transaction per alert to find that out
        for a, f in notable[:MAX_NOTIFY]:
            where = "/".join(x for x in (a.cluster, a.namespace) if x)
            title = f"[{a.severity}] {a.rule}" + (f" in {where}" if where else "")
            if f.recurred:
                title += " (again, after it was resolved)"
            data = {
                "id": f.id,
                "rule": a.rule,
                "severity": a.severity,
                "cluster": a.cluster,
                "namespace": a.namespace,
                "output": a.output,
                "source": a.source,
                "count": a.count,
                "first_seen": a.first_seen,
                "fingerprint": a.fingerprint,
                "recurred": f.recurred,
            }
            notify.publish(store, queue, "alert.new", title, data)
        if len(notable) > MAX_NOTIFY:
            rest = notable[MAX_NOTIFY:]
            ids = [f.id for _, f in rest]
            again = [f.id for _, f in rest if f.recurred]
            what = "new or recurred" if again else "new"
            data = {"ids": ids[:1000], "recurred": again[:1000]}
            notify.publish(store, queue, "alert.new", f"{len(rest)} more {what} alerts", data)
    except Exception as e:  # the alerts are stored; a notification problem is not the poster's
        log.error("alert.new notification not queued: %s", type(e).__name__)


def ingest_audit(
    store: Store, who: Principal, body: bytes, ruleset: RuleSet, cluster: str = "", queue: Queue | None = None
) -> Ingested:
    """The audit webhook: an ``EventList`` (or one ``Event``) through the runtime rules; the alerts are
    folded into the store by fingerprint (a new one is stored ``active``, or ``dismissed`` when a
    suppression rule matches; a known one, whatever its status, gets the count added and its first/last
    seen widened). Raises InputError for a body that is not one.

    The events' cluster: a scoped agent's own (naming another is :class:`Forbidden`), else ``cluster``."""
    cluster = _scope(who, cluster)
    try:
        events = parse_event(body, cluster=cluster)
    except NotAnAuditEvent as e:
        raise InputError(str(e)) from None
    ev = evaluate_events(events, ruleset)
    detail = {"events": ev.events, "matches": ev.matches}
    new, suppressed, again = fold_alerts(store, who, [_alert_in(a) for a in ev.alerts], "k8s-audit", detail, queue)
    return Ingested(ev.events, ev.matches, len(ev.alerts), new, suppressed, again)


def _text(obj: dict[str, Any], key: str, where: str, limit: int = 4096, required: bool = False) -> str:
    v = obj.get(key, "")
    if v is None:
        v = ""
    if not isinstance(v, str) or len(v) > limit:
        raise InputError(f"{where}.{key}: a string of at most {limit} characters")
    if required and not v:
        raise InputError(f"{where}.{key}: required")
    return v


def _node_alert(raw: Any, where: str, cluster: str) -> Alert:
    """One object of the sensor's webhook sink (:func:`garrison.report.alerts_jsonl.alert_line`) as an
    alert of ``cluster`` (the poster's scope wins over what the object says)."""
    if not isinstance(raw, dict):
        raise InputError(f"{where}: an alert object")
    rule = _text(raw, "rule", where, 256, required=True)
    sev = _text(raw, "severity", where, 16) or "UNKNOWN"
    if sev.upper() not in Severity.__members__:
        raise InputError(f"{where}.severity: one of {', '.join(Severity.__members__)}")
    count = raw.get("count", 1)
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= 1_000_000_000:
        raise InputError(f"{where}.count: a whole number from 1")
    times = {}
    for key in ("time", "first_seen", "last_seen"):
        text = _text(raw, key, where, 64)
        try:
            times[key] = normalize_iso(text) if text else ""
        except ValueError:
            raise InputError(f"{where}.{key}: an ISO 8601 time") from None
    first = times["first_seen"] or times["time"] or now_iso()
    last = times["last_seen"] or first
    if last < first:
        raise InputError(f"{where}: last_seen before first_seen")
    ents = raw.get("entities", {})
    if not isinstance(ents, dict):
        raise InputError(f"{where}.entities: an object")
    known = {k: _text(ents, k, f"{where}.entities", 1024) for k in Entities.__dataclass_fields__ if k in ents}
    known["cluster"] = cluster
    mitre: dict[str, Any] = raw["mitre"] if isinstance(raw.get("mitre"), dict) else {}
    events: list[Any] = raw["events"] if isinstance(raw.get("events"), list) else []
    return Alert(
        rule=rule,
        priority=_text(raw, "priority", where, 16),
        severity=Severity[sev.upper()],
        source=_text(raw, "source", where, 32) or "syscall",
        mitre_tactic=_text(mitre, "tactic", where, 32),
        mitre_technique=_text(mitre, "technique", where, 32),
        time=first,
        output=_text(raw, "output", where, 8192),
        entities=Entities(**known),
        count=count,
        first_seen=first,
        last_seen=last,
        events=tuple(
            AlertEvent(time=str(e.get("time", ""))[:64], id=str(e.get("id", ""))[:128])
            for e in events[:10]
            if isinstance(e, dict)
        ),
    )


def ingest_node(store: Store, who: Principal, body: bytes, cluster: str = "", queue: Queue | None = None) -> Ingested:
    """Alerts of a node sensor (``garrison runtime sensor --webhook URL``: ``{"alerts": [alert, …]}``),
    folded like the audit webhook's (same fingerprints, suppression rules, notifications) for the
    poster's cluster. The whole body is checked before anything is stored: one bad alert refuses all."""
    cluster = _scope(who, cluster)
    try:
        doc = json.loads(body)
    except (ValueError, RecursionError):
        raise InputError('not JSON: expected {"alerts": [alert, …]}') from None
    if not isinstance(doc, dict) or not isinstance(doc.get("alerts"), list):
        raise InputError('expected {"alerts": [alert, …]} (what the node sensor\'s webhook sends)')
    items = doc["alerts"]
    if len(items) > MAX_NODE_ALERTS:
        raise InputError(f"at most {MAX_NODE_ALERTS} alerts per request")
    alerts = [_node_alert(raw, f"alerts[{i}]", cluster) for i, raw in enumerate(items)]
    matches = sum(a.count for a in alerts)
    folded = fold_alerts(store, who, [_alert_in(a) for a in alerts], "node", {"matches": matches}, queue)
    return Ingested(0, matches, len(alerts), *folded)


def list_audit_log(store: Store, limit: int = 100, offset: int = 0) -> Page[AuditEntry]:
    with store.transaction(readonly=True) as tx:
        return tx.audit.list(limit, offset)
