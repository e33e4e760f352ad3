"""One repository protocol per aggregate (users, tokens, the audit log, alerts; the other areas' in
their own modules) and their one implementation on SQLAlchemy Core.

Services open a unit of work with :meth:`Store.transaction` and get the four repositories bound to one
transaction, so a change and its audit-log entry are committed together or not at all.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import replace
from typing import Any, Protocol

from sqlalchemy import Connection, Engine, Select, and_, case, func, insert, literal_column, select, update
from sqlalchemy.exc import IntegrityError

from garrison.store import tables as t
from garrison.store.admission import AdmissionRepository, SqlAdmission
from garrison.store.clusters import ClusterRepository, SqlClusters
from garrison.store.images import ImageRepository, SqlImages
from garrison.store.notify import NotificationRepository, SqlNotifications
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
    record_of,
)

#: The execution option that marks a read-only transaction (``store.db``'s SQLite ``begin`` hook reads it).
READONLY = "garrison_readonly"


class Conflict(Exception):
    """A unique key is taken (a user name)."""


class UserRepository(Protocol):
    def add(self, name: str, role: Role, at: str, cluster: str = "") -> User:
        """Raises :class:`Conflict` when the name is taken."""
        ...

    def get(self, user_id: int) -> User | None: ...
    def by_name(self, name: str) -> User | None: ...
    def list(self, limit: int, offset: int) -> Page[User]: ...
    def set_disabled(self, user_id: int, disabled: bool) -> User | None: ...
    def count_admins(self) -> int:
        """Enabled admins."""
        ...


class TokenRepository(Protocol):
    def add(self, user_id: int, name: str, prefix: str, token_hash: str, at: str, expires_at: str) -> Token: ...
    def get(self, token_id: int) -> Token | None: ...
    def by_hash(self, token_hash: str) -> tuple[Token, str] | None:
        """The token with this hash and the stored hash (the caller compares in constant time)."""
        ...

    def list(self, user_id: int | None, limit: int, offset: int) -> Page[Token]:
        """``user_id`` None: every user's."""
        ...

    def revoke(self, token_id: int, at: str) -> Token | None: ...


class AuditLog(Protocol):
    """Append-only: there is no update and no delete."""

    def append(
        self,
        at: str,
        actor: str,
        action: str,
        target_type: str,
        target_id: str,
        reason: str = "",
        detail: dict[str, Any] | None = None,
    ) -> AuditEntry: ...
    def list(self, limit: int, offset: int) -> Page[AuditEntry]:
        """Newest first."""
        ...


class AlertRepository(Protocol):
    def fold(self, alert: AlertIn, at: str, dismiss: tuple[int, str] | None = None) -> Folded:
        """Insert the alert, or add its count to the stored one with its fingerprint (first and last seen
        widened). ``dismiss`` (a suppression rule's id and reason) stores a new alert dismissed and
        dismisses an active or resolved one; without it a resolved alert that happens again is active
        (``recurred``) and a dismissed one stays dismissed. ``new`` and ``recurred`` are exact under
        concurrent folds of a stored alert: each change of status is reported by one fold only."""
        ...

    def fold_many(self, items: Sequence[tuple[AlertIn, tuple[int, str] | None]], at: str) -> list[Folded]:
        """:meth:`fold` of each (alert, dismiss), in as few statements as it can, in one lock order."""
        ...

    def get(self, alert_id: int) -> StoredAlert | None: ...
    def list(self, f: AlertFilter, limit: int, offset: int) -> Page[StoredAlert]:
        """Newest ``last_seen`` first."""
        ...

    def set_status(self, alert_id: int, status: AlertStatus, by: str, reason: str, at: str) -> StoredAlert | None: ...


class Repositories(Protocol):
    users: UserRepository
    tokens: TokenRepository
    audit: AuditLog
    alerts: AlertRepository
    images: ImageRepository
    clusters: ClusterRepository
    admission: AdmissionRepository
    notifications: NotificationRepository


class Store(Protocol):
    def transaction(self, *, readonly: bool = False) -> AbstractContextManager[Repositories]:
        """The repositories in one transaction (committed on leaving, rolled back on an error).

        ``readonly``: the transaction only reads. On SQLite it then takes no write lock (WAL lets it read
        while another writes), so token checks and lists do not queue behind writers; on PostgreSQL it is
        ``READ ONLY``, so a write in it is an error rather than a surprise."""
        ...

    def ping(self) -> None: ...


# --- SQLAlchemy Core -------------------------------------------------------------------------------


def _page(conn: Connection, query: Select[Any], order: Sequence[Any], limit: int, offset: int) -> tuple[list[Any], int]:
    total = conn.execute(select(func.count()).select_from(query.subquery())).scalar_one()
    rows = list(conn.execute(query.order_by(*order).limit(limit).offset(offset)))
    return rows, int(total)


def _user(r: Any) -> User:
    return record_of(User, r, role=Role, disabled=bool)


def _token(r: Any) -> Token:
    return record_of(Token, r)


def _entry(r: Any) -> AuditEntry:
    return record_of(AuditEntry, r, detail=dict)


def _alert(r: Any) -> StoredAlert:
    return record_of(StoredAlert, r, entities=dict, status=AlertStatus)


class SqlUsers:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def add(self, name: str, role: Role, at: str, cluster: str = "") -> User:
        if self.by_name(name) is not None:
            raise Conflict(f"a user named {name!r} exists")
        try:
            uid = self.conn.execute(
                insert(t.users).values(name=name, role=role.value, disabled=False, created_at=at, cluster=cluster)
            ).inserted_primary_key
        except IntegrityError:  # created at the same moment by another request
            raise Conflict(f"a user named {name!r} exists") from None
        assert uid is not None
        user = self.get(int(uid[0]))
        assert user is not None
        return user

    def get(self, user_id: int) -> User | None:
        r = self.conn.execute(select(t.users).where(t.users.c.id == user_id)).first()
        return None if r is None else _user(r)

    def by_name(self, name: str) -> User | None:
        r = self.conn.execute(select(t.users).where(t.users.c.name == name)).first()
        return None if r is None else _user(r)

    def list(self, limit: int, offset: int) -> Page[User]:
        rows, total = _page(self.conn, select(t.users), [t.users.c.id], limit, offset)
        return Page(tuple(_user(r) for r in rows), total, limit, offset)

    def set_disabled(self, user_id: int, disabled: bool) -> User | None:
        self.conn.execute(update(t.users).where(t.users.c.id == user_id).values(disabled=disabled))
        return self.get(user_id)

    def count_admins(self) -> int:
        q = select(func.count()).where(t.users.c.role == Role.ADMIN.value, t.users.c.disabled.is_(False))
        return int(self.conn.execute(q).scalar_one())


class SqlTokens:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def add(self, user_id: int, name: str, prefix: str, token_hash: str, at: str, expires_at: str) -> Token:
        tid = self.conn.execute(
            insert(t.tokens).values(
                user_id=user_id,
                name=name,
                prefix=prefix,
                token_hash=token_hash,
                created_at=at,
                expires_at=expires_at,
                revoked_at="",
            )
        ).inserted_primary_key
        assert tid is not None
        tok = self.get(int(tid[0]))
        assert tok is not None
        return tok

    def get(self, token_id: int) -> Token | None:
        r = self.conn.execute(select(t.tokens).where(t.tokens.c.id == token_id)).first()
        return None if r is None else _token(r)

    def by_hash(self, token_hash: str) -> tuple[Token, str] | None:
        r = self.conn.execute(select(t.tokens).where(t.tokens.c.token_hash == token_hash)).first()
        return None if r is None else (_token(r), str(r.token_hash))

    def list(self, user_id: int | None, limit: int, offset: int) -> Page[Token]:
        q = select(t.tokens)
        if user_id is not None:
            q = q.where(t.tokens.c.user_id == user_id)
        rows, total = _page(self.conn, q, [t.tokens.c.id], limit, offset)
        return Page(tuple(_token(r) for r in rows), total, limit, offset)

    def revoke(self, token_id: int, at: str) -> Token | None:
        self.conn.execute(
            update(t.tokens).where(t.tokens.c.id == token_id, t.tokens.c.revoked_at == "").values(revoked_at=at)
        )
        return self.get(token_id)


class SqlAuditLog:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def append(
        self,
        at: str,
        actor: str,
        action: str,
        target_type: str,
        target_id: str,
        reason: str = "",
        detail: dict[str, Any] | None = None,
    ) -> AuditEntry:
        values = dict(
            at=at,
            actor=actor,
            action=action,
            target_type=target_type,
            target_id=target_id,
            reason=reason,
            detail=detail or {},
        )
        pk = self.conn.execute(insert(t.audit_log).values(**values)).inserted_primary_key
        assert pk is not None
        return AuditEntry(id=int(pk[0]), **values)  # type: ignore[arg-type]

    def list(self, limit: int, offset: int) -> Page[AuditEntry]:
        rows, total = _page(self.conn, select(t.audit_log), [t.audit_log.c.id.desc()], limit, offset)
        return Page(tuple(_entry(r) for r in rows), total, limit, offset)


class SqlAlerts:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def fold(self, alert: AlertIn, at: str, dismiss: tuple[int, str] | None = None) -> Folded:
        return self.fold_many([(alert, dismiss)], at)[0]

    def fold_many(self, items: Sequence[tuple[AlertIn, tuple[int, str] | None]], at: str) -> list[Folded]:
        # One upsert statement per suppression rule involved (most batches: one), its rows in fingerprint
        # order: concurrent batches then lock the rows they share in the same order (no deadlock), and
        # concurrent batches of the same alert add their counts, never lose one. SQLite and PostgreSQL
        # spell the upsert alike. One statement may not touch a row twice, so the alerts of a batch that
        # share a fingerprint (two aggregates of one subject: common in real batches) are merged first,
        # as folding them one after the other would: counts added, first and last seen widened; the
        # later ones then report what a second fold reports (not new, caught by no rule).
        slot: dict[str, int] = {}
        merged: list[tuple[AlertIn, tuple[int, str] | None]] = []
        owner: list[tuple[int, bool]] = []
        for alert, dismiss in items:
            j = slot.get(alert.fingerprint)
            if j is None:
                slot[alert.fingerprint] = len(merged)
                owner.append((len(merged), True))
                merged.append((alert, dismiss))
                continue
            kept, kept_dismiss = merged[j]
            merged[j] = (
                replace(
                    kept,
                    count=kept.count + alert.count,
                    first_seen=min(kept.first_seen, alert.first_seen),
                    last_seen=max(kept.last_seen, alert.last_seen),
                ),
                kept_dismiss,
            )
            owner.append((j, False))
        groups: dict[tuple[int, str] | None, list[int]] = {}
        for i in sorted(range(len(merged)), key=lambda i: merged[i][0].fingerprint):
            groups.setdefault(merged[i][1], []).append(i)
        done: dict[int, Folded] = {}
        for members in groups.values():
            for i, folded in zip(members, self._fold_group([merged[i] for i in members], at), strict=True):
                done[i] = folded
        return [done[j] if first else replace(done[j], new=False, caught_by=0, recurred=False) for j, first in owner]

    def _fold_group(self, items: Sequence[tuple[AlertIn, tuple[int, str] | None]], at: str) -> list[Folded]:
        """Fold alerts sharing one ``dismiss`` (and distinct fingerprints) with one statement."""
        dialect = self.conn.dialect.name
        if dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as pg_insert

            upsert: Any = pg_insert
        elif dialect == "sqlite":
            from sqlalchemy.dialects.sqlite import insert as sqlite_insert

            upsert = sqlite_insert
        else:
            raise NotImplementedError(f"alerts upsert on {dialect}")
        c = t.alerts.c
        dismiss = items[0][1]
        fingerprints = [a.fingerprint for a, _ in items]
        # The stored statuses, their rows locked (PostgreSQL; SQLite's transaction holds the write lock
        # already) in fingerprint order, the order the upsert takes them in: a concurrent fold of the same
        # alert waits here and then reads what this one wrote, so a resolved alert that happens in two
        # batches at once is reported recurred (and notified) by one of them only.
        before: dict[str, str] = {}
        for n in range(0, len(fingerprints), 500):
            chunk = fingerprints[n : n + 500]
            q = select(c.fingerprint, c.status).where(c.fingerprint.in_(chunk)).order_by(c.fingerprint)
            for fp, status in self.conn.execute(q.with_for_update()):
                before[fp] = status
        by, why = (f"suppression:{dismiss[0]}", dismiss[1]) if dismiss else ("", "")
        target = AlertStatus.DISMISSED.value if dismiss else AlertStatus.ACTIVE.value
        rows = [
            {
                "fingerprint": alert.fingerprint,
                "rule": alert.rule,
                "severity": alert.severity,
                "priority": alert.priority,
                "source": alert.source,
                "output": alert.output,
                "cluster": alert.cluster,
                "namespace": alert.namespace,
                "entities": alert.entities,
                "count": alert.count,
                "first_seen": alert.first_seen,
                "last_seen": alert.last_seen,
                "status": target,
                "dismissed_by": by,
                "dismissed_reason": why,
                "dismissed_at": at if dismiss else "",
                "updated_at": at,
                "resolved_by": "",
                "resolved_reason": "",
                "resolved_at": "",
            }
            for alert, _ in items
        ]
        stmt = upsert(t.alerts).values(rows)
        new = stmt.excluded
        # Which stored statuses this fold changes: a suppression dismisses active and resolved alerts;
        # otherwise a resolved alert that happens again is active again. A dismissed one stays dismissed.
        changes = c.status.in_(("active", "resolved")) if dismiss else c.status == "resolved"

        def changed(value: Any, kept: Any) -> Any:
            return case((changes, value), else_=kept)

        set_: dict[str, Any] = {
            "count": c.count + new.count,
            "first_seen": case((new.first_seen < c.first_seen, new.first_seen), else_=c.first_seen),
            "last_seen": case((new.last_seen > c.last_seen, new.last_seen), else_=c.last_seen),
            "updated_at": new.updated_at,
            "status": changed(new.status, c.status),
            "resolved_by": changed("", c.resolved_by),
            "resolved_reason": changed("", c.resolved_reason),
            "resolved_at": changed("", c.resolved_at),
        }
        if dismiss:
            set_ |= {
                "dismissed_by": changed(new.dismissed_by, c.dismissed_by),
                "dismissed_reason": changed(new.dismissed_reason, c.dismissed_reason),
                "dismissed_at": changed(new.dismissed_at, c.dismissed_at),
            }
        returned: list[Any] = [c.fingerprint, c.id, c.status, c.dismissed_by]
        if dialect == "postgresql":
            # Whether this statement inserted the row: a row lock cannot cover a row that does not exist
            # yet, so two folds of a new fingerprint at once both read "absent" above; the second then
            # waits on the unique index and updates. xmax is 0 only on the version an INSERT made.
            returned.append(literal_column("(xmax = 0)").label("inserted"))
        stmt = stmt.on_conflict_do_update(index_elements=[c.fingerprint], set_=set_).returning(*returned)
        got = {r.fingerprint: r for r in self.conn.execute(stmt)}
        out = []
        for fp in fingerprints:
            row = got[fp]
            status = AlertStatus(row.status)
            was = before.get(fp)
            # SQLite: the transaction holds the write lock from its start, so "absent" means inserted.
            inserted = bool(row.inserted) if dialect == "postgresql" else was is None
            caught = (
                dismiss[0]
                if dismiss
                and status is AlertStatus.DISMISSED
                and row.dismissed_by == by
                and (inserted or (was is not None and was != AlertStatus.DISMISSED.value))
                else 0
            )
            recurred = not dismiss and was == AlertStatus.RESOLVED.value and status is AlertStatus.ACTIVE
            out.append(Folded(int(row.id), inserted, status, caught, recurred))
        return out

    def get(self, alert_id: int) -> StoredAlert | None:
        r = self.conn.execute(select(t.alerts).where(t.alerts.c.id == alert_id)).first()
        return None if r is None else _alert(r)

    def list(self, f: AlertFilter, limit: int, offset: int) -> Page[StoredAlert]:
        c = t.alerts.c
        conds = [
            col == value
            for col, value in (
                (c.status, f.status),
                (c.severity, f.severity),
                (c.rule, f.rule),
                (c.namespace, f.namespace),
                (c.cluster, f.cluster),
            )
            if value
        ]
        if f.since:
            conds.append(c.last_seen >= f.since)
        if f.until:
            conds.append(c.last_seen <= f.until)
        q = select(t.alerts).where(and_(True, *conds))
        rows, total = _page(self.conn, q, [c.last_seen.desc(), c.id.desc()], limit, offset)
        return Page(tuple(_alert(r) for r in rows), total, limit, offset)

    def set_status(self, alert_id: int, status: AlertStatus, by: str, reason: str, at: str) -> StoredAlert | None:
        values = dict(
            status=status.value,
            dismissed_by="",
            dismissed_reason="",
            dismissed_at="",
            resolved_by="",
            resolved_reason="",
            resolved_at="",
        )
        if status is AlertStatus.DISMISSED:
            values |= dict(dismissed_by=by, dismissed_reason=reason, dismissed_at=at)
        elif status is AlertStatus.RESOLVED:
            values |= dict(resolved_by=by, resolved_reason=reason, resolved_at=at)
        self.conn.execute(update(t.alerts).where(t.alerts.c.id == alert_id).values(updated_at=at, **values))
        return self.get(alert_id)


class SqlRepositories:
    def __init__(self, conn: Connection) -> None:
        self.users: UserRepository = SqlUsers(conn)
        self.tokens: TokenRepository = SqlTokens(conn)
        self.audit: AuditLog = SqlAuditLog(conn)
        self.alerts: AlertRepository = SqlAlerts(conn)
        self.images: ImageRepository = SqlImages(conn)
        self.clusters: ClusterRepository = SqlClusters(conn)
        self.admission: AdmissionRepository = SqlAdmission(conn)
        self.notifications: NotificationRepository = SqlNotifications(conn)


class SqlStore:
    """The :class:`Store` on one SQLAlchemy engine (SQLite or PostgreSQL)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @contextmanager
    def transaction(self, *, readonly: bool = False) -> Iterator[Repositories]:
        if not readonly:
            with self.engine.begin() as conn:
                yield SqlRepositories(conn)
            return
        options: dict[str, Any] = {READONLY: True}
        if self.engine.dialect.name == "postgresql":
            options["postgresql_readonly"] = True
        with self.engine.connect().execution_options(**options) as conn, conn.begin():
            yield SqlRepositories(conn)

    def ping(self) -> None:
        from garrison.store.db import ping

        ping(self.engine)
