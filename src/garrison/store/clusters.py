"""The store's clusters, their assessments (recommendations, score over time), posture exemptions and
alert suppression rules.

Tables (on :data:`garrison.store.tables.metadata`) and repository. Created by migration ``0003``.

A cluster keeps the findings of its latest finished assessment only (``cluster_findings``: replaced
as a whole when an assessment finishes, so the table stays the size of the clusters, not of their
history); every assessment keeps its summary and its scores (``cluster_scores``: one row per scope,
the secure score over time). A snapshot waiting for its ``assess_cluster`` job is kept in
``cluster_snapshots`` and deleted when the job has stored its results.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Connection,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
    and_,
    case,
    delete,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError

from garrison.model.common import Severity
from garrison.store.records import Page
from garrison.store.tables import TIME, metadata

clusters = Table(
    "clusters",
    metadata,
    # The id the admin chose (``prod-eu``): in URLs, on alerts, in the agent's scope.
    Column("id", String(64), primary_key=True),
    Column("name", String(256), nullable=False),
    Column("description", Text, nullable=False, default=""),
    # The cluster's agent (its audit webhook and node sensors post with that user's tokens).
    Column("agent_user_id", Integer, ForeignKey("users.id"), nullable=False),
    Column("created_by", String(128), nullable=False),
    Column("created_at", String(TIME), nullable=False),
    # The latest finished assessment (0: none yet) and when it finished.
    Column("assessment_id", Integer, nullable=False, default=0),
    Column("assessed_at", String(TIME), nullable=False, default=""),
)

cluster_assessments = Table(
    "cluster_assessments",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("cluster_id", String(64), ForeignKey("clusters.id"), nullable=False, index=True),
    # queued → running → done | failed
    Column("status", String(16), nullable=False),
    Column("posted_by", String(128), nullable=False),
    Column("received_at", String(TIME), nullable=False),
    Column("finished_at", String(TIME), nullable=False, default=""),
    Column("resources", Integer, nullable=False, default=0),
    Column("findings", Integer, nullable=False, default=0),
    Column("exempted", Integer, nullable=False, default=0),
    # The overall secure score (None: nothing applied, or not assessed yet).
    Column("score", Float, nullable=True),
    # Objects per kind, unassessed kinds, warnings (the first ones), the whole score document.
    Column("summary", JSON, nullable=False),
    Column("error", Text, nullable=False, default=""),
    Column("duration_ms", Integer, nullable=False, default=0),
)

cluster_snapshots = Table(
    "cluster_snapshots",
    metadata,
    Column("assessment_id", Integer, ForeignKey("cluster_assessments.id"), primary_key=True),
    Column("body", LargeBinary, nullable=False),
)

cluster_findings = Table(
    "cluster_findings",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("cluster_id", String(64), ForeignKey("clusters.id"), nullable=False),
    Column("assessment_id", Integer, nullable=False, index=True),
    Column("control_id", String(64), nullable=False),
    Column("title", Text, nullable=False),
    Column("severity", String(16), nullable=False),
    # Severity as a number (CRITICAL 5 … UNKNOWN 0), for ordering and thresholds.
    Column("rank", Integer, nullable=False),
    Column("family", String(64), nullable=False),
    Column("frameworks", JSON, nullable=False),
    Column("kind", String(256), nullable=False),
    Column("namespace", String(256), nullable=False),
    Column("name", String(256), nullable=False),
    # ``Kind/namespace/name`` (``Kind/name`` when cluster-scoped).
    Column("object", String(1024), nullable=False),
    Column("container", String(256), nullable=False),
    Column("path", Text, nullable=False),
    Column("actual", Text, nullable=False),
    Column("expected", Text, nullable=False),
    Column("remediation", Text, nullable=False),
    Column("exempted", Boolean, nullable=False),
    # The stored exemption that caught it (0: none, or an annotation on the object).
    Column("exemption_id", Integer, nullable=False, default=0),
    Column("exempt_reason", Text, nullable=False, default=""),
    Column("exempt_origin", Text, nullable=False, default=""),
    Index("ix_cluster_findings_cluster_id", "cluster_id", "control_id"),
    Index("ix_cluster_findings_exemption_id", "exemption_id"),
)

cluster_scores = Table(
    "cluster_scores",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("assessment_id", Integer, ForeignKey("cluster_assessments.id"), nullable=False, index=True),
    Column("cluster_id", String(64), nullable=False),
    Column("at", String(TIME), nullable=False),
    # ``overall``, ``framework`` or ``namespace``; ``name`` the framework or namespace ("" overall).
    Column("scope", String(16), nullable=False),
    Column("name", String(256), nullable=False),
    Column("score", Float, nullable=True),
    Column("checks", Integer, nullable=False),
    Column("passed", Integer, nullable=False),
    Column("failed", Integer, nullable=False),
    Column("exempted", Integer, nullable=False),
    Index("ix_cluster_scores_cluster_id", "cluster_id", "scope", "name", "at"),
)

exemptions = Table(
    "exemptions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    # The cluster it applies to ("" every cluster).
    Column("cluster", String(64), nullable=False, default=""),
    # The fields of an entry of the CLI's exemptions file (garrison.findings.exemptions).
    Column("controls", JSON, nullable=False),
    Column("namespaces", JSON, nullable=False),
    Column("resources", JSON, nullable=False),
    Column("selector", JSON, nullable=True),
    Column("reason", Text, nullable=False),
    # The last day it applies (YYYY-MM-DD; "" never expires).
    Column("expires", String(10), nullable=False, default=""),
    Column("created_by", String(128), nullable=False),
    Column("created_at", String(TIME), nullable=False),
)

suppressions = Table(
    "suppressions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    # Globs (fnmatch) on the alert's rule, namespace, image, user and cluster ("" any).
    Column("rule", String(256), nullable=False, default=""),
    Column("namespace", String(256), nullable=False, default=""),
    Column("image", String(512), nullable=False, default=""),
    Column("user", String(256), nullable=False, default=""),
    Column("cluster", String(256), nullable=False, default=""),
    Column("reason", Text, nullable=False),
    # When it stops applying ("" never).
    Column("expires_at", String(TIME), nullable=False, default=""),
    Column("created_by", String(128), nullable=False),
    Column("created_at", String(TIME), nullable=False),
    # Alerts it dismissed at ingestion, and the last time it did.
    Column("caught", Integer, nullable=False, default=0),
    Column("last_caught_at", String(TIME), nullable=False, default=""),
)


# --- records ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Cluster:
    id: str
    name: str
    description: str
    agent_user_id: int
    created_by: str
    created_at: str
    #: The latest finished assessment (0: none yet).
    assessment_id: int
    assessed_at: str
    #: That assessment's overall secure score (None: none yet, or nothing applied).
    score: float | None = None


@dataclass(frozen=True, slots=True)
class Assessment:
    id: int
    cluster_id: str
    #: ``queued``, ``running``, ``done`` or ``failed``.
    status: str
    posted_by: str
    received_at: str
    finished_at: str
    resources: int
    findings: int
    exempted: int
    score: float | None
    summary: dict[str, Any]
    error: str
    duration_ms: int


@dataclass(frozen=True, slots=True)
class ClusterFinding:
    """One posture finding of a cluster's latest assessment (open, or exempted with the decision)."""

    id: int
    cluster_id: str
    assessment_id: int
    control_id: str
    title: str
    severity: str
    rank: int
    family: str
    frameworks: list[str]
    kind: str
    namespace: str
    name: str
    object: str
    container: str
    path: str
    actual: str
    expected: str
    remediation: str
    exempted: bool
    exemption_id: int
    exempt_reason: str
    exempt_origin: str


@dataclass(frozen=True, slots=True)
class FindingIn:
    """A finding to store (the fields of :class:`ClusterFinding` the assessment produces)."""

    control_id: str
    title: str
    severity: str
    rank: int
    family: str
    frameworks: list[str]
    kind: str
    namespace: str
    name: str
    object: str
    container: str
    path: str
    actual: str
    expected: str
    remediation: str
    exempted: bool
    exemption_id: int = 0
    exempt_reason: str = ""
    exempt_origin: str = ""


@dataclass(frozen=True, slots=True)
class Recommendation:
    """One control's findings in a cluster: what to fix first, with every affected object."""

    control_id: str
    title: str
    severity: str
    rank: int
    remediation: str
    #: Objects with an open finding of the control (the blast radius), sorted.
    objects: tuple[str, ...]
    findings: int
    #: Objects whose findings of the control are all exempted.
    exempted_objects: tuple[str, ...]
    exempted: int
    namespaces: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ScoreIn:
    scope: str
    name: str
    score: float | None
    checks: int
    passed: int
    failed: int
    exempted: int


@dataclass(frozen=True, slots=True)
class ScorePoint:
    assessment_id: int
    at: str
    scope: str
    name: str
    score: float | None
    checks: int
    passed: int
    failed: int
    exempted: int


@dataclass(frozen=True, slots=True)
class StoredExemption:
    id: int
    cluster: str
    controls: list[str]
    namespaces: list[str]
    resources: list[str]
    selector: dict[str, Any] | None
    reason: str
    expires: str
    created_by: str
    created_at: str
    #: Findings of the clusters' latest assessments it exempts (counted when read).
    caught: int = 0


@dataclass(frozen=True, slots=True)
class ExemptionIn:
    cluster: str
    controls: list[str]
    namespaces: list[str]
    resources: list[str]
    selector: dict[str, Any] | None
    reason: str
    expires: str


@dataclass(frozen=True, slots=True)
class SuppressionRule:
    id: int
    rule: str
    namespace: str
    image: str
    user: str
    cluster: str
    reason: str
    expires_at: str
    created_by: str
    created_at: str
    caught: int
    last_caught_at: str


@dataclass(frozen=True, slots=True)
class SuppressionIn:
    rule: str
    namespace: str
    image: str
    user: str
    cluster: str
    reason: str
    expires_at: str


@dataclass(frozen=True, slots=True)
class FindingFilter:
    """Filters of a cluster's findings and recommendations ("" / empty: any)."""

    #: Control ids (a framework's controls, or the one ``control`` asked for); empty: every control.
    controls: tuple[str, ...] = ()
    #: Lowest severity rank (0: any).
    min_rank: int = 0
    #: None: any; "" the cluster-scoped objects.
    namespace: str | None = None
    #: ``open``, ``exempted`` or "" (both).
    status: str = ""


class Taken(Exception):
    """A cluster id is taken."""


# --- repository ------------------------------------------------------------------------------------


class ClusterRepository(Protocol):
    def add(self, cluster_id: str, name: str, description: str, agent_user_id: int, by: str, at: str) -> Cluster:
        """Raises :class:`Taken` when the id is taken."""
        ...

    def get(self, cluster_id: str) -> Cluster | None: ...
    def list_clusters(self, limit: int, offset: int) -> Page[Cluster]: ...

    # assessments
    def add_assessment(self, cluster_id: str, posted_by: str, at: str, status: str) -> Assessment: ...
    def get_assessment(self, assessment_id: int) -> Assessment | None: ...
    def list_assessments(self, cluster_id: str, limit: int, offset: int) -> Page[Assessment]:
        """Newest first."""
        ...

    def set_assessment_status(self, assessment_id: int, status: str, error: str = "", at: str = "") -> None: ...
    def put_snapshot(self, assessment_id: int, body: bytes) -> None: ...
    def take_snapshot(self, assessment_id: int) -> bytes | None:
        """The waiting snapshot (kept until :meth:`finish_assessment` deletes it)."""
        ...

    def finish_assessment(
        self,
        assessment_id: int,
        at: str,
        *,
        resources: int,
        score: float | None,
        summary: dict[str, Any],
        duration_ms: int,
        findings: Sequence[FindingIn],
        scores: Sequence[ScoreIn],
    ) -> Assessment:
        """Store an assessment's results: its findings replace the cluster's, its scores join the
        history, the cluster points at it (unless a newer one finished first) and its snapshot goes."""
        ...

    # findings, recommendations, scores
    def findings(self, cluster_id: str, f: FindingFilter, limit: int, offset: int) -> Page[ClusterFinding]: ...
    def recommendations(self, cluster_id: str, f: FindingFilter, limit: int, offset: int) -> Page[Recommendation]:
        """Findings grouped by control: most severe first, then most open objects, then by id."""
        ...

    def scores(self, assessment_id: int) -> list[ScorePoint]: ...
    def score_history(self, cluster_id: str, scope: str, name: str, limit: int, offset: int) -> Page[ScorePoint]:
        """Newest first."""
        ...

    # exemptions
    def add_exemption(self, e: ExemptionIn, by: str, at: str) -> StoredExemption: ...
    def get_exemption(self, exemption_id: int) -> StoredExemption | None: ...
    def list_exemptions(self, cluster: str | None, limit: int, offset: int) -> Page[StoredExemption]:
        """``cluster`` None: every exemption; else those for that cluster and for every cluster."""
        ...

    def delete_exemption(self, exemption_id: int) -> None: ...

    # alert suppression rules
    def add_suppression(self, s: SuppressionIn, by: str, at: str) -> SuppressionRule: ...
    def get_suppression(self, suppression_id: int) -> SuppressionRule | None: ...
    def list_suppressions(self, limit: int, offset: int) -> Page[SuppressionRule]: ...
    def active_suppressions(self, at: str) -> list[SuppressionRule]:
        """The rules not expired at ``at``, oldest first (the first that matches decides)."""
        ...

    def count_caught(self, suppression_id: int, n: int, at: str) -> None: ...
    def delete_suppression(self, suppression_id: int) -> None: ...


def _rec(cls: type[Any], r: Any, **convert: Any) -> Any:
    from dataclasses import fields

    return cls(
        **{
            f.name: (convert[f.name](getattr(r, f.name)) if f.name in convert else getattr(r, f.name))
            for f in fields(cls)
            if f.name in r._fields
        }
    )


def _count(conn: Connection, q: Any) -> int:
    return int(conn.execute(select(func.count()).select_from(q.subquery())).scalar_one())


class SqlClusters:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    # clusters ---------------------------------------------------------------------------------------

    def add(self, cluster_id: str, name: str, description: str, agent_user_id: int, by: str, at: str) -> Cluster:
        if self.get(cluster_id) is not None:
            raise Taken(f"a cluster {cluster_id!r} exists")
        try:
            self.conn.execute(
                insert(clusters).values(
                    id=cluster_id,
                    name=name,
                    description=description,
                    agent_user_id=agent_user_id,
                    created_by=by,
                    created_at=at,
                    assessment_id=0,
                    assessed_at="",
                )
            )
        except IntegrityError:  # registered at the same moment by another request
            raise Taken(f"a cluster {cluster_id!r} exists") from None
        got = self.get(cluster_id)
        assert got is not None
        return got

    def _select(self) -> Any:
        a = cluster_assessments.c
        return select(clusters, a.score).select_from(
            clusters.outerjoin(cluster_assessments, a.id == clusters.c.assessment_id)
        )

    def get(self, cluster_id: str) -> Cluster | None:
        r = self.conn.execute(self._select().where(clusters.c.id == cluster_id)).first()
        return None if r is None else _rec(Cluster, r)

    def list_clusters(self, limit: int, offset: int) -> Page[Cluster]:
        rows = self.conn.execute(self._select().order_by(clusters.c.id).limit(limit).offset(offset))
        return Page(tuple(_rec(Cluster, r) for r in rows), _count(self.conn, select(clusters)), limit, offset)

    # assessments ------------------------------------------------------------------------------------

    def add_assessment(self, cluster_id: str, posted_by: str, at: str, status: str) -> Assessment:
        pk = self.conn.execute(
            insert(cluster_assessments).values(
                cluster_id=cluster_id,
                status=status,
                posted_by=posted_by,
                received_at=at,
                finished_at="",
                resources=0,
                findings=0,
                exempted=0,
                score=None,
                summary={},
                error="",
                duration_ms=0,
            )
        ).inserted_primary_key
        assert pk is not None
        got = self.get_assessment(int(pk[0]))
        assert got is not None
        return got

    def get_assessment(self, assessment_id: int) -> Assessment | None:
        r = self.conn.execute(select(cluster_assessments).where(cluster_assessments.c.id == assessment_id)).first()
        return None if r is None else _rec(Assessment, r, summary=dict)

    def list_assessments(self, cluster_id: str, limit: int, offset: int) -> Page[Assessment]:
        c = cluster_assessments.c
        q = select(cluster_assessments).where(c.cluster_id == cluster_id)
        rows = self.conn.execute(q.order_by(c.id.desc()).limit(limit).offset(offset))
        return Page(tuple(_rec(Assessment, r, summary=dict) for r in rows), _count(self.conn, q), limit, offset)

    def set_assessment_status(self, assessment_id: int, status: str, error: str = "", at: str = "") -> None:
        values: dict[str, Any] = {"status": status, "error": error}
        if at:
            values["finished_at"] = at
        self.conn.execute(update(cluster_assessments).where(cluster_assessments.c.id == assessment_id).values(**values))
        if status == "failed":
            self.conn.execute(delete(cluster_snapshots).where(cluster_snapshots.c.assessment_id == assessment_id))

    def put_snapshot(self, assessment_id: int, body: bytes) -> None:
        self.conn.execute(insert(cluster_snapshots).values(assessment_id=assessment_id, body=body))

    def take_snapshot(self, assessment_id: int) -> bytes | None:
        r = self.conn.execute(
            select(cluster_snapshots.c.body).where(cluster_snapshots.c.assessment_id == assessment_id)
        ).first()
        return None if r is None else bytes(r.body)

    def finish_assessment(
        self,
        assessment_id: int,
        at: str,
        *,
        resources: int,
        score: float | None,
        summary: dict[str, Any],
        duration_ms: int,
        findings: Sequence[FindingIn],
        scores: Sequence[ScoreIn],
    ) -> Assessment:
        a = self.get_assessment(assessment_id)
        assert a is not None
        exempted = sum(1 for f in findings if f.exempted)
        self.conn.execute(
            update(cluster_assessments)
            .where(cluster_assessments.c.id == assessment_id)
            .values(
                status="done",
                finished_at=at,
                resources=resources,
                findings=len(findings) - exempted,
                exempted=exempted,
                score=score,
                summary=summary,
                error="",
                duration_ms=duration_ms,
            )
        )
        self.conn.execute(delete(cluster_snapshots).where(cluster_snapshots.c.assessment_id == assessment_id))
        if scores:
            self.conn.execute(
                insert(cluster_scores),
                [
                    dict(
                        assessment_id=assessment_id,
                        cluster_id=a.cluster_id,
                        at=at,
                        scope=s.scope,
                        name=s.name,
                        score=s.score,
                        checks=s.checks,
                        passed=s.passed,
                        failed=s.failed,
                        exempted=s.exempted,
                    )
                    for s in scores
                ],
            )
        cl = self.get(a.cluster_id)
        assert cl is not None
        if assessment_id > cl.assessment_id:  # an older job finishing late does not replace a newer result
            self.conn.execute(delete(cluster_findings).where(cluster_findings.c.cluster_id == a.cluster_id))
            names = _FINDING_FIELDS
            rows = [
                {"cluster_id": a.cluster_id, "assessment_id": assessment_id, **{n: getattr(f, n) for n in names}}
                for f in findings
            ]
            for i in range(0, len(rows), 1000):
                self.conn.execute(insert(cluster_findings), rows[i : i + 1000])
            self.conn.execute(
                update(clusters)
                .where(clusters.c.id == a.cluster_id)
                .values(assessment_id=assessment_id, assessed_at=at)
            )
        done = self.get_assessment(assessment_id)
        assert done is not None
        return done

    # findings and recommendations --------------------------------------------------------------------

    def _where(self, cluster_id: str, f: FindingFilter) -> list[Any]:
        c = cluster_findings.c
        conds: list[Any] = [c.cluster_id == cluster_id]
        if f.controls:
            conds.append(c.control_id.in_(f.controls))
        if f.min_rank:
            conds.append(c.rank >= f.min_rank)
        if f.namespace is not None:
            conds.append(c.namespace == f.namespace)
        if f.status == "open":
            conds.append(c.exempted.is_(False))
        elif f.status == "exempted":
            conds.append(c.exempted.is_(True))
        return conds

    def findings(self, cluster_id: str, f: FindingFilter, limit: int, offset: int) -> Page[ClusterFinding]:
        c = cluster_findings.c
        q = select(cluster_findings).where(and_(*self._where(cluster_id, f)))
        order = (c.rank.desc(), c.control_id, c.object, c.container, c.path, c.id)
        rows = self.conn.execute(q.order_by(*order).limit(limit).offset(offset))
        items = tuple(_rec(ClusterFinding, r, frameworks=list, exempted=bool) for r in rows)
        return Page(items, _count(self.conn, q), limit, offset)

    def recommendations(self, cluster_id: str, f: FindingFilter, limit: int, offset: int) -> Page[Recommendation]:
        c = cluster_findings.c
        conds = self._where(cluster_id, f)
        open_objects = func.count(func.distinct(_open_object()))
        rank = func.max(c.rank)
        grouped = (
            select(
                c.control_id,
                rank.label("rank"),
                open_objects.label("objects"),
                func.sum(case((c.exempted.is_(False), 1), else_=0)).label("open"),
                func.count().label("all"),
                func.min(c.title).label("title"),
                func.min(c.remediation).label("remediation"),
            )
            .where(and_(*conds))
            .group_by(c.control_id)
        )
        total = _count(self.conn, select(c.control_id).where(and_(*conds)).group_by(c.control_id))
        rows = list(
            self.conn.execute(
                grouped.order_by(rank.desc(), open_objects.desc(), c.control_id).limit(limit).offset(offset)
            )
        )
        ids = [r.control_id for r in rows]
        objects: dict[str, tuple[set[str], set[str], set[str]]] = {i: (set(), set(), set()) for i in ids}
        if ids:
            q = (
                select(c.control_id, c.object, c.namespace, c.exempted)
                .where(and_(*conds, c.control_id.in_(ids)))
                .distinct()
            )
            for cid, obj, ns, exempted in self.conn.execute(q):
                open_objs, exempt_objs, namespaces = objects[cid]
                (exempt_objs if exempted else open_objs).add(obj)
                namespaces.add(ns)
        out = []
        for r in rows:
            open_objs, exempt_objs, namespaces = objects[r.control_id]
            out.append(
                Recommendation(
                    control_id=r.control_id,
                    title=r.title,
                    severity=Severity(int(r.rank)).name,
                    rank=int(r.rank),
                    remediation=r.remediation,
                    objects=tuple(sorted(open_objs)),
                    findings=int(r.open),
                    exempted_objects=tuple(sorted(exempt_objs - open_objs)),
                    exempted=int(r.all) - int(r.open),
                    namespaces=tuple(sorted(namespaces)),
                )
            )
        return Page(tuple(out), total, limit, offset)

    def scores(self, assessment_id: int) -> list[ScorePoint]:
        s = cluster_scores.c
        rows = self.conn.execute(
            select(cluster_scores).where(s.assessment_id == assessment_id).order_by(s.scope, s.name)
        )
        return [_rec(ScorePoint, r) for r in rows]

    def score_history(self, cluster_id: str, scope: str, name: str, limit: int, offset: int) -> Page[ScorePoint]:
        s = cluster_scores.c
        q = select(cluster_scores).where(s.cluster_id == cluster_id, s.scope == scope, s.name == name)
        rows = self.conn.execute(q.order_by(s.at.desc(), s.id.desc()).limit(limit).offset(offset))
        return Page(tuple(_rec(ScorePoint, r) for r in rows), _count(self.conn, q), limit, offset)

    # exemptions -------------------------------------------------------------------------------------

    def add_exemption(self, e: ExemptionIn, by: str, at: str) -> StoredExemption:
        pk = self.conn.execute(
            insert(exemptions).values(**_fields(e), created_by=by, created_at=at)
        ).inserted_primary_key
        assert pk is not None
        got = self.get_exemption(int(pk[0]))
        assert got is not None
        return got

    def _caught(self, ids: Iterable[int]) -> dict[int, int]:
        ids = list(ids)
        if not ids:
            return {}
        c = cluster_findings.c
        rows = self.conn.execute(
            select(c.exemption_id, func.count()).where(c.exemption_id.in_(ids)).group_by(c.exemption_id)
        )
        return {int(i): int(n) for i, n in rows}

    def _exemption(self, r: Any, caught: dict[int, int]) -> StoredExemption:
        base = _rec(StoredExemption, r, controls=list, namespaces=list, resources=list)
        return StoredExemption(**{**_fields(base), "caught": caught.get(base.id, 0)})

    def get_exemption(self, exemption_id: int) -> StoredExemption | None:
        r = self.conn.execute(select(exemptions).where(exemptions.c.id == exemption_id)).first()
        return None if r is None else self._exemption(r, self._caught([exemption_id]))

    def list_exemptions(self, cluster: str | None, limit: int, offset: int) -> Page[StoredExemption]:
        q = select(exemptions)
        if cluster is not None:
            q = q.where(or_(exemptions.c.cluster == cluster, exemptions.c.cluster == ""))
        rows = list(self.conn.execute(q.order_by(exemptions.c.id).limit(limit).offset(offset)))
        caught = self._caught(r.id for r in rows)
        return Page(tuple(self._exemption(r, caught) for r in rows), _count(self.conn, q), limit, offset)

    def delete_exemption(self, exemption_id: int) -> None:
        self.conn.execute(delete(exemptions).where(exemptions.c.id == exemption_id))

    # suppressions -----------------------------------------------------------------------------------

    def add_suppression(self, s: SuppressionIn, by: str, at: str) -> SuppressionRule:
        pk = self.conn.execute(
            insert(suppressions).values(**_fields(s), created_by=by, created_at=at, caught=0, last_caught_at="")
        ).inserted_primary_key
        assert pk is not None
        got = self.get_suppression(int(pk[0]))
        assert got is not None
        return got

    def get_suppression(self, suppression_id: int) -> SuppressionRule | None:
        r = self.conn.execute(select(suppressions).where(suppressions.c.id == suppression_id)).first()
        return None if r is None else _rec(SuppressionRule, r)

    def list_suppressions(self, limit: int, offset: int) -> Page[SuppressionRule]:
        q = select(suppressions)
        rows = self.conn.execute(q.order_by(suppressions.c.id).limit(limit).offset(offset))
        return Page(tuple(_rec(SuppressionRule, r) for r in rows), _count(self.conn, q), limit, offset)

    def active_suppressions(self, at: str) -> list[SuppressionRule]:
        s = suppressions.c
        q = select(suppressions).where(or_(s.expires_at == "", s.expires_at > at)).order_by(s.id)
        return [_rec(SuppressionRule, r) for r in self.conn.execute(q)]

    def count_caught(self, suppression_id: int, n: int, at: str) -> None:
        s = suppressions.c
        self.conn.execute(
            update(suppressions).where(s.id == suppression_id).values(caught=s.caught + n, last_caught_at=at)
        )

    def delete_suppression(self, suppression_id: int) -> None:
        self.conn.execute(delete(suppressions).where(suppressions.c.id == suppression_id))


#: The columns a :class:`FindingIn` fills (looked up once: a snapshot has tens of thousands of findings).
_FINDING_FIELDS = tuple(f.name for f in dataclasses.fields(FindingIn))


def _open_object() -> Any:
    """The object of an open finding, NULL for an exempted one (COUNT DISTINCT skips NULLs)."""
    from sqlalchemy import null

    c = cluster_findings.c
    return case((c.exempted.is_(False), c.object), else_=null())


def _fields(obj: Any) -> dict[str, Any]:
    from dataclasses import fields

    return {f.name: getattr(obj, f.name) for f in fields(obj)}
