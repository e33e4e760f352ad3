"""The store's notification targets (webhooks, Slack) and their deliveries with retries.

A target's URL and extra headers are secrets (a Slack incoming-webhook URL *is* its credential): the
rows hold them only sealed by :mod:`garrison.services.secretbox`, next to what may be shown (the host,
the header names). A delivery is one event sent to one target: ``pending`` until an attempt succeeds
(``delivered``) or the last one fails (``failed``); every attempt counts and leaves its HTTP status and
error on the row. Sent and failed deliveries are deleted after the server's ``delivery_retention_days``
(:meth:`SqlNotifications.purge_deliveries`, by a periodic job); pending ones stay until they end.

Tables (on :data:`garrison.store.tables.metadata`) and repository. Created by migration ``0006``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Connection,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    and_,
    delete,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError

from garrison.store.records import Page, as_tuple, record_of
from garrison.store.tables import TIME, metadata


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"


class TargetNameTaken(Exception):
    """Another target has this name."""


notification_targets = Table(
    "notification_targets",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(128), nullable=False, unique=True),
    # webhook (generic JSON) or slack (an incoming webhook's body)
    Column("kind", String(16), nullable=False),
    # What may be shown of the URL: host[:port].
    Column("host", String(300), nullable=False),
    # The URL, sealed (secretbox).
    Column("url_sealed", Text, nullable=False),
    # The names of the extra headers (shown) and a JSON object of them all, sealed ("" without any).
    Column("header_names", JSON, nullable=False),
    Column("headers_sealed", Text, nullable=False, default=""),
    # The events subscribed to (a JSON list of names).
    Column("events", JSON, nullable=False),
    # The least severity an event must have to be sent (a Severity name).
    Column("min_severity", String(16), nullable=False),
    Column("enabled", Boolean, nullable=False, default=True),
    Column("created_by", String(128), nullable=False),
    Column("created_at", String(TIME), nullable=False),
)

notification_deliveries = Table(
    "notification_deliveries",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("target_id", Integer, ForeignKey("notification_targets.id"), nullable=False),
    Column("event", String(64), nullable=False),
    Column("title", Text, nullable=False),
    Column("data", JSON, nullable=False),
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    # The last attempt's HTTP status (0: no answer) and error ("" after a success).
    Column("http_status", Integer, nullable=False, default=0),
    Column("last_error", Text, nullable=False, default=""),
    Column("created_at", String(TIME), nullable=False),
    Column("updated_at", String(TIME), nullable=False),
    Column("delivered_at", String(TIME), nullable=False, default=""),
    Index("ix_notification_deliveries_target_id_id", "target_id", "id"),
    Index("ix_notification_deliveries_status", "status"),
)


@dataclass(frozen=True, slots=True)
class NotificationTarget:
    """A configured target. ``url_sealed`` and ``headers_sealed`` never leave the server."""

    id: int
    name: str
    #: ``webhook`` or ``slack``.
    kind: str
    #: The URL's host[:port], the only part of it ever shown.
    host: str
    url_sealed: str
    #: The extra headers' names (their values are sealed in ``headers_sealed``).
    header_names: tuple[str, ...]
    headers_sealed: str
    events: tuple[str, ...]
    min_severity: str
    enabled: bool
    created_by: str
    created_at: str


@dataclass(frozen=True, slots=True)
class Delivery:
    """One event to one target and what became of it."""

    id: int
    target_id: int
    event: str
    #: The one-line summary (Slack's ``text``).
    title: str
    #: The event's details (JSON; never secrets).
    data: dict[str, Any]
    status: DeliveryStatus
    #: Attempts made so far.
    attempts: int
    #: The last attempt's HTTP status (0: no answer: refused, timed out, never tried).
    http_status: int
    last_error: str
    created_at: str
    updated_at: str
    delivered_at: str


@dataclass(frozen=True, slots=True)
class TargetIn:
    """A target to add (the secrets already sealed)."""

    name: str
    kind: str
    host: str
    url_sealed: str
    header_names: tuple[str, ...]
    headers_sealed: str
    events: tuple[str, ...]
    min_severity: str
    enabled: bool


class NotificationRepository(Protocol):
    def add_target(self, target: TargetIn, by: str, at: str) -> NotificationTarget:
        """Raises :class:`TargetNameTaken`."""
        ...

    def get_target(self, target_id: int) -> NotificationTarget | None: ...
    def list_targets(self, limit: int, offset: int) -> Page[NotificationTarget]: ...
    def subscribed(self, event: str) -> list[NotificationTarget]:
        """The enabled targets subscribed to ``event``."""
        ...

    def update_target(self, target_id: int, values: dict[str, Any]) -> NotificationTarget | None:
        """Change some of: name, host, url_sealed, header_names, headers_sealed, events, min_severity,
        enabled. Raises :class:`TargetNameTaken`."""
        ...

    def delete_target(self, target_id: int) -> bool:
        """Delete the target and its deliveries; False when there is none."""
        ...

    def add_delivery(self, target_id: int, event: str, title: str, data: dict[str, Any], at: str) -> Delivery: ...
    def get_delivery(self, delivery_id: int) -> Delivery | None: ...
    def list_deliveries(self, target_id: int, status: str, limit: int, offset: int) -> Page[Delivery]:
        """Newest first; ``status`` "" means any."""
        ...

    def record_attempt(
        self, delivery_id: int, status: DeliveryStatus, http_status: int, error: str, at: str
    ) -> Delivery | None:
        """Count one attempt and its outcome (``status`` the delivery's status after it)."""
        ...

    def purge_deliveries(self, before: str) -> int:
        """Delete the ``delivered`` and ``failed`` deliveries whose last attempt was before ``before``
        (never a ``pending`` one); how many."""
        ...


def _target(r: Any) -> NotificationTarget:
    return record_of(NotificationTarget, r, header_names=as_tuple, events=as_tuple, enabled=bool)


def _delivery(r: Any) -> Delivery:
    return record_of(Delivery, r, data=lambda v: dict(v or {}), status=DeliveryStatus)


class SqlNotifications:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def add_target(self, target: TargetIn, by: str, at: str) -> NotificationTarget:
        c = notification_targets.c
        if self.conn.execute(select(c.id).where(c.name == target.name)).first() is not None:
            raise TargetNameTaken(f"a notification target named {target.name!r} exists")
        try:
            pk = self.conn.execute(
                insert(notification_targets).values(
                    name=target.name,
                    kind=target.kind,
                    host=target.host,
                    url_sealed=target.url_sealed,
                    header_names=list(target.header_names),
                    headers_sealed=target.headers_sealed,
                    events=list(target.events),
                    min_severity=target.min_severity,
                    enabled=target.enabled,
                    created_by=by,
                    created_at=at,
                )
            ).inserted_primary_key
        except IntegrityError:  # added at the same moment by another request
            raise TargetNameTaken(f"a notification target named {target.name!r} exists") from None
        assert pk is not None
        made = self.get_target(int(pk[0]))
        assert made is not None
        return made

    def get_target(self, target_id: int) -> NotificationTarget | None:
        r = self.conn.execute(select(notification_targets).where(notification_targets.c.id == target_id)).first()
        return None if r is None else _target(r)

    def list_targets(self, limit: int, offset: int) -> Page[NotificationTarget]:
        t = notification_targets
        total = int(self.conn.execute(select(func.count()).select_from(t)).scalar_one())
        rows = self.conn.execute(select(t).order_by(t.c.id).limit(limit).offset(offset))
        return Page(tuple(_target(r) for r in rows), total, limit, offset)

    def subscribed(self, event: str) -> list[NotificationTarget]:
        # The events are a short JSON list: filtered here rather than with a JSON operator that SQLite
        # and PostgreSQL spell differently. Targets are few (an admin adds them by hand).
        t = notification_targets
        rows = self.conn.execute(select(t).where(t.c.enabled.is_(True)).order_by(t.c.id))
        return [target for target in map(_target, rows) if event in target.events]

    def update_target(self, target_id: int, values: dict[str, Any]) -> NotificationTarget | None:
        t = notification_targets
        row = dict(values)
        for key in ("header_names", "events"):
            if key in row:
                row[key] = list(row[key])
        if "name" in row:
            taken = self.conn.execute(select(t.c.id).where(t.c.name == row["name"], t.c.id != target_id)).first()
            if taken is not None:
                raise TargetNameTaken(f"a notification target named {row['name']!r} exists")
        if row:
            try:
                self.conn.execute(update(t).where(t.c.id == target_id).values(**row))
            except IntegrityError:  # renamed at the same moment by another request
                raise TargetNameTaken(f"a notification target named {row.get('name')!r} exists") from None
        return self.get_target(target_id)

    def delete_target(self, target_id: int) -> bool:
        d = notification_deliveries
        self.conn.execute(delete(d).where(d.c.target_id == target_id))
        t = notification_targets
        return bool(self.conn.execute(delete(t).where(t.c.id == target_id)).rowcount)

    def add_delivery(self, target_id: int, event: str, title: str, data: dict[str, Any], at: str) -> Delivery:
        pk = self.conn.execute(
            insert(notification_deliveries).values(
                target_id=target_id,
                event=event,
                title=title,
                data=data,
                status=DeliveryStatus.PENDING.value,
                attempts=0,
                http_status=0,
                last_error="",
                created_at=at,
                updated_at=at,
                delivered_at="",
            )
        ).inserted_primary_key
        assert pk is not None
        made = self.get_delivery(int(pk[0]))
        assert made is not None
        return made

    def get_delivery(self, delivery_id: int) -> Delivery | None:
        d = notification_deliveries
        r = self.conn.execute(select(d).where(d.c.id == delivery_id)).first()
        return None if r is None else _delivery(r)

    def list_deliveries(self, target_id: int, status: str, limit: int, offset: int) -> Page[Delivery]:
        d = notification_deliveries
        cond = and_(d.c.target_id == target_id, *([d.c.status == status] if status else []))
        total = int(self.conn.execute(select(func.count()).select_from(d).where(cond)).scalar_one())
        rows = self.conn.execute(select(d).where(cond).order_by(d.c.id.desc()).limit(limit).offset(offset))
        return Page(tuple(_delivery(r) for r in rows), total, limit, offset)

    def record_attempt(
        self, delivery_id: int, status: DeliveryStatus, http_status: int, error: str, at: str
    ) -> Delivery | None:
        d = notification_deliveries
        values: dict[str, Any] = dict(
            status=status.value,
            attempts=d.c.attempts + 1,
            http_status=http_status,
            last_error=error,
            updated_at=at,
        )
        if status is DeliveryStatus.DELIVERED:
            values["delivered_at"] = at
        self.conn.execute(update(d).where(d.c.id == delivery_id).values(**values))
        return self.get_delivery(delivery_id)

    def purge_deliveries(self, before: str) -> int:
        d = notification_deliveries
        done = (DeliveryStatus.DELIVERED.value, DeliveryStatus.FAILED.value)
        q = delete(d).where(d.c.status.in_(done), d.c.updated_at < before)
        return int(self.conn.execute(q).rowcount)
