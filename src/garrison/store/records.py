"""What the store hands back: frozen records, one per row kind. Times are ISO 8601 UTC strings of one
fixed width (``2026-12-01T22:44:22.318065Z``), so that they sort as text on every database."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Generic, TypeVar

T = TypeVar("T")
_R = TypeVar("_R")


def record_of(cls: type[_R], r: Any, **convert: Callable[[Any], Any]) -> _R:
    """A record from a row whose columns are named like the record's fields (``convert`` turns a column's
    stored form into the field's type): one mapping for every table instead of a field list per record."""
    names = [f.name for f in fields(cls)]  # type: ignore[arg-type]
    return cls(**{n: convert[n](getattr(r, n)) if n in convert else getattr(r, n) for n in names})


def as_tuple(value: Any) -> tuple[Any, ...]:
    """A JSON list column (None for none) as the record's tuple: a ``convert`` of :func:`record_of`."""
    return tuple(value or ())


class Role(StrEnum):
    """The roles of ``PLATFORM.md``; the server enforces them, never a page."""

    #: Users, tokens, settings and everything else.
    ADMIN = "admin"
    #: Triage: dismiss, resolve and reopen alerts, exemptions, suppression rules, policies; reads everything.
    SECURITY_ADMIN = "security-admin"
    #: Reads everything, changes nothing.
    SECURITY_READER = "security-reader"
    #: A machine identity (a cluster's audit webhook, a node sensor): posts events, reads nothing.
    AGENT = "agent"


class AlertStatus(StrEnum):
    """``active`` → ``dismissed`` (a security admin, or a suppression rule, with a reason) or ``resolved``
    (the problem was fixed); both can be reopened (back to ``active``)."""

    ACTIVE = "active"
    DISMISSED = "dismissed"
    RESOLVED = "resolved"


def now_iso() -> str:
    """The current time in the store's one format."""
    return iso_of(datetime.now(UTC))


def iso_of(t: datetime) -> str:
    """``t`` (aware) in the store's one format."""
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def normalize_iso(text: str) -> str:
    """Any ISO 8601 time (``Z`` or an offset; a naive one is taken as UTC) in the store's format.
    Raises ValueError for text that is not a time."""
    t = datetime.fromisoformat(text)
    if t.tzinfo is None:
        t = t.replace(tzinfo=UTC)
    return iso_of(t)


@dataclass(frozen=True, slots=True)
class User:
    id: int
    #: Unique login name.
    name: str
    role: Role
    #: A disabled user's tokens stop working; the user stays for the audit log.
    disabled: bool
    created_at: str
    #: An agent's cluster: the events it posts come from there, and it may post for no other ("" unscoped).
    cluster: str = ""


@dataclass(frozen=True, slots=True)
class Token:
    """An API token's metadata; the token itself is never stored (only its SHA-256)."""

    id: int
    user_id: int
    #: What the token is for (``laptop``, ``audit-webhook``).
    name: str
    #: The first characters of the token, enough to recognise it in a list and useless to an attacker.
    prefix: str
    created_at: str
    #: "" for a token that does not expire.
    expires_at: str
    #: "" while the token is valid.
    revoked_at: str


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One line of the append-only log: who did what to which object, when and why."""

    id: int
    at: str
    #: The user's name (``cli`` for ``garrison server`` commands run on the machine).
    actor: str
    #: ``user.create``, ``token.revoke``, ``alert.dismiss``, ``cluster.create``, ``suppression.create`` …
    action: str
    #: ``user``, ``token``, ``alert``, ``events``, ``cluster``, ``exemption``, ``suppression``.
    target_type: str
    target_id: str
    reason: str
    #: What changed (never a token or secret).
    detail: dict[str, Any]


@dataclass(frozen=True, slots=True)
class StoredAlert:
    """An alert as the server keeps it: de-duplicated by fingerprint, with a count over every batch."""

    id: int
    #: :attr:`garrison.model.common.Finding.fingerprint` of the alert: kind, rule and subject.
    fingerprint: str
    rule: str
    severity: str
    priority: str
    source: str
    output: str
    cluster: str
    namespace: str
    #: :class:`garrison.model.runtime.Entities` as a JSON object.
    entities: dict[str, str]
    count: int
    first_seen: str
    last_seen: str
    status: AlertStatus
    dismissed_by: str
    dismissed_reason: str
    dismissed_at: str
    updated_at: str
    resolved_by: str = ""
    resolved_reason: str = ""
    resolved_at: str = ""


@dataclass(frozen=True, slots=True)
class AlertIn:
    """An alert to fold into the store (from the runtime engine)."""

    fingerprint: str
    rule: str
    severity: str
    priority: str
    source: str
    output: str
    cluster: str
    namespace: str
    entities: dict[str, str]
    count: int
    first_seen: str
    last_seen: str


@dataclass(frozen=True, slots=True)
class Folded:
    """What folding one alert into the store did."""

    id: int
    #: The fingerprint was not stored before.
    new: bool
    #: The alert's status after the fold.
    status: AlertStatus
    #: The suppression rule that dismissed it in this fold (0: none did).
    caught_by: int = 0
    #: It was ``resolved`` and this fold made it ``active`` again (it happened again).
    recurred: bool = False


@dataclass(frozen=True, slots=True)
class AlertFilter:
    """``GET /alerts`` filters; "" means any. ``since``/``until`` bound ``last_seen`` (inclusive)."""

    status: str = ""
    severity: str = ""
    rule: str = ""
    namespace: str = ""
    cluster: str = ""
    since: str = ""
    until: str = ""


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of a list and the total the filters match."""

    items: tuple[T, ...]
    total: int
    limit: int
    offset: int
