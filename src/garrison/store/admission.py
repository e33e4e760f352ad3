"""The store's admission decisions: one row per AdmissionReview the server's webhook answered, kept so
that a security team can see what was denied, what only warned and who used the break-glass annotation.

Rows are only ever added (a decision is a fact about the past); the list is newest first with the
filters of ``GET /api/v1/admission/decisions``. Created by migration ``0005``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Connection,
    Index,
    Integer,
    String,
    Table,
    Text,
    and_,
    func,
    insert,
    select,
)

from garrison.store.records import Page, as_tuple, record_of
from garrison.store.tables import TIME, metadata

admission_decisions = Table(
    "admission_decisions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", String(TIME), nullable=False),
    # The cluster of the agent whose API server called ("" when an admin's token called).
    Column("cluster", String(256), nullable=False),
    Column("namespace", String(256), nullable=False),
    Column("kind", String(128), nullable=False),
    Column("name", String(256), nullable=False),
    Column("operation", String(16), nullable=False),
    # The Kubernetes user who made the request (``request.userInfo.username``).
    Column("username", String(256), nullable=False),
    Column("allowed", Boolean, nullable=False),
    # The policy's mode when it decided: ``enforce`` or ``audit``.
    Column("mode", String(16), nullable=False),
    # Why it was (or, in audit mode or under break-glass, would have been) denied: one text per failure.
    Column("reasons", JSON, nullable=False),
    # The warnings returned to the client.
    Column("warnings", JSON, nullable=False),
    # The break-glass annotation's reason when it allowed the request ("" otherwise).
    Column("break_glass", Text, nullable=False),
    # ``request.uid`` (the API server's audit log carries it too).
    Column("uid", String(128), nullable=False),
    Column("dry_run", Boolean, nullable=False),
    # Why the request was not checked (an excluded namespace, a DELETE), "" when it was.
    Column("skipped", Text, nullable=False),
    Index("ix_admission_decisions_at", "at"),
    Index("ix_admission_decisions_cluster_at", "cluster", "at"),
    Index("ix_admission_decisions_namespace", "namespace"),
)


@dataclass(frozen=True, slots=True)
class DecisionIn:
    """A decision to record."""

    at: str
    cluster: str
    namespace: str
    kind: str
    name: str
    operation: str
    username: str
    allowed: bool
    mode: str
    reasons: tuple[str, ...]
    warnings: tuple[str, ...]
    break_glass: str
    uid: str
    dry_run: bool
    skipped: str


@dataclass(frozen=True, slots=True)
class Decision:
    """A recorded decision."""

    id: int
    at: str
    cluster: str
    namespace: str
    kind: str
    name: str
    operation: str
    username: str
    allowed: bool
    mode: str
    reasons: tuple[str, ...]
    warnings: tuple[str, ...]
    break_glass: str
    uid: str
    dry_run: bool
    skipped: str


@dataclass(frozen=True, slots=True)
class DecisionFilter:
    """``GET /admission/decisions`` filters; "" or None means any. ``since``/``until`` bound ``at``
    (inclusive, in the store's time format)."""

    cluster: str = ""
    namespace: str = ""
    kind: str = ""
    name: str = ""
    operation: str = ""
    username: str = ""
    allowed: bool | None = None
    break_glass: bool | None = None
    uid: str = ""
    since: str = ""
    until: str = ""


def _decision(r: Any) -> Decision:
    return record_of(Decision, r, id=int, allowed=bool, dry_run=bool, reasons=as_tuple, warnings=as_tuple)


def _values(d: DecisionIn) -> dict[str, Any]:
    return dict(
        at=d.at,
        cluster=d.cluster,
        namespace=d.namespace,
        kind=d.kind,
        name=d.name,
        operation=d.operation,
        username=d.username,
        allowed=d.allowed,
        mode=d.mode,
        reasons=list(d.reasons),
        warnings=list(d.warnings),
        break_glass=d.break_glass,
        uid=d.uid,
        dry_run=d.dry_run,
        skipped=d.skipped,
    )


class AdmissionRepository(Protocol):
    """Admission decisions: added, listed; never changed."""

    def add(self, d: DecisionIn) -> Decision: ...
    def add_many(self, ds: Sequence[DecisionIn]) -> int:
        """Insert many in one statement (the recorder's batches); how many."""
        ...

    def get(self, decision_id: int) -> Decision | None: ...
    def list(self, f: DecisionFilter, limit: int, offset: int) -> Page[Decision]:
        """Newest first."""
        ...


class SqlAdmission:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def add(self, d: DecisionIn) -> Decision:
        values = _values(d)
        pk = self.conn.execute(insert(admission_decisions).values(**values)).inserted_primary_key
        assert pk is not None
        return Decision(id=int(pk[0]), **{**values, "reasons": d.reasons, "warnings": d.warnings})  # type: ignore[arg-type]

    def add_many(self, ds: Sequence[DecisionIn]) -> int:
        if ds:
            self.conn.execute(insert(admission_decisions), [_values(d) for d in ds])
        return len(ds)

    def get(self, decision_id: int) -> Decision | None:
        t = admission_decisions
        r = self.conn.execute(select(t).where(t.c.id == decision_id)).first()
        return None if r is None else _decision(r)

    def list(self, f: DecisionFilter, limit: int, offset: int) -> Page[Decision]:
        c = admission_decisions.c
        conds: list[Any] = [
            col == value
            for col, value in (
                (c.cluster, f.cluster),
                (c.namespace, f.namespace),
                (c.kind, f.kind),
                (c.name, f.name),
                (c.operation, f.operation),
                (c.username, f.username),
                (c.uid, f.uid),
            )
            if value
        ]
        if f.allowed is not None:
            conds.append(c.allowed.is_(f.allowed))
        if f.break_glass is not None:
            conds.append(c.break_glass != "" if f.break_glass else c.break_glass == "")
        if f.since:
            conds.append(c.at >= f.since)
        if f.until:
            conds.append(c.at <= f.until)
        q = select(admission_decisions).where(and_(True, *conds))
        total = self.conn.execute(select(func.count()).select_from(q.subquery())).scalar_one()
        rows = self.conn.execute(q.order_by(c.at.desc(), c.id.desc()).limit(limit).offset(offset))
        return Page(tuple(_decision(r) for r in rows), int(total), limit, offset)
