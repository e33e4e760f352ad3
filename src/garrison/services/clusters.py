"""Posture results in one place: registered clusters, the snapshots they post, the posture engine run
on them (inline, or as the ``assess_cluster`` job), the recommendations and the secure score over
time, and the exemptions applied at assessment; the alert suppression rules are managed here too (the
alert ingestion in :mod:`garrison.services.server` applies them).

The assessment is the CLI's: :func:`garrison.services.posture.assess` over the posted snapshot with
the stored exemptions written as the CLI's exemptions file, so a finding the server exempts is one the
CLI exempts. Every change writes the audit log in its own transaction.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from garrison.errors import GarrisonError, InputError
from garrison.findings.exemptions import check_selector
from garrison.jobs import JobContext, Queue
from garrison.model.common import Severity
from garrison.model.posture import Misconfiguration
from garrison.posture.report import PostureReport
from garrison.services.server import (
    CLI_ACTOR,
    Forbidden,
    NewToken,
    NotFound,
    Principal,
    Refused,
    issue_token,
)
from garrison.store.clusters import (
    Assessment,
    Cluster,
    ClusterFinding,
    ExemptionIn,
    FindingFilter,
    FindingIn,
    Recommendation,
    ScoreIn,
    ScorePoint,
    StoredExemption,
    SuppressionIn,
    SuppressionRule,
    Taken,
)
from garrison.store.records import Page, Role, User, normalize_iso, now_iso
from garrison.store.repos import Conflict, Repositories, Store

log = logging.getLogger("garrison.server")

#: A cluster id: lower-case letters, digits, ``-``, ``.`` and ``_``, starting with a letter or digit.
CLUSTER_ID = re.compile(r"[a-z0-9][a-z0-9._-]{0,62}")
#: Warnings kept with an assessment (the rest are counted).
MAX_WARNINGS = 50
#: The task of :data:`garrison.jobs.tasks.TASKS` that assesses a posted snapshot.
TASK = "assess_cluster"
SCOPES = ("overall", "framework", "namespace")


def _formula() -> str:
    from garrison.posture.score import ScopeScore, Score

    empty = ScopeScore(None, 0, 0, 0, 0)
    return str(Score(empty, {}, {}).as_dict()["formula"])


#: How the secure score is computed (the posture engine's own words).
FORMULA = _formula()


@dataclass(frozen=True, slots=True)
class NewCluster:
    cluster: Cluster
    agent: User
    #: The agent's token: shown in this answer only.
    token: NewToken


# --- clusters ----------------------------------------------------------------------------------------


def _cluster_id(text: str) -> str:
    if not CLUSTER_ID.fullmatch(text):
        raise InputError(
            f"cluster id {text[:80]!r}: 1 to 63 of a-z, 0-9, '-', '.', '_', starting with a letter or digit"
        )
    return text


def create_cluster(
    store: Store, who: Principal | None, cluster_id: str, name: str = "", description: str = ""
) -> NewCluster:
    """Register a cluster with its agent (user ``agent:<id>``, role agent, scoped to the cluster) and the
    agent's first token (shown once): the cluster's audit webhook and node sensors post with it."""
    cid = _cluster_id(cluster_id)
    actor = who.user.name if who else CLI_ACTOR
    at = now_iso()
    with store.transaction() as tx:
        try:
            agent = tx.users.add(f"agent:{cid}", Role.AGENT, at, cid)
        except Conflict as e:
            raise Refused(str(e)) from None
        try:
            cluster = tx.clusters.add(cid, name.strip() or cid, description.strip(), agent.id, actor, at)
        except Taken as e:
            raise Refused(str(e)) from None
        token = issue_token(tx, agent, "cluster-agent", None, at)
        tx.audit.append(at, actor, "cluster.create", "cluster", cid, "", {"name": cluster.name, "agent": agent.name})
        tx.audit.append(at, actor, "user.create", "user", str(agent.id), "", {"name": agent.name, "cluster": cid})
        tx.audit.append(at, actor, "token.create", "token", str(token.token.id), "", {"user": agent.name})
        return NewCluster(cluster, agent, token)


def list_clusters(store: Store, limit: int = 100, offset: int = 0) -> Page[Cluster]:
    with store.transaction(readonly=True) as tx:
        return tx.clusters.list_clusters(limit, offset)


def _get(tx: Repositories, cluster_id: str) -> Cluster:
    c = tx.clusters.get(cluster_id)
    if c is None:
        raise NotFound(f"no cluster {cluster_id!r}")
    return c


def get_cluster(store: Store, cluster_id: str) -> Cluster:
    with store.transaction(readonly=True) as tx:
        return _get(tx, cluster_id)


# --- snapshots and assessments ----------------------------------------------------------------------


def _may_post(who: Principal, cluster_id: str) -> None:
    """An agent scoped to a cluster posts for that cluster only (checked before the cluster is looked
    up, so another cluster's token learns nothing about which clusters exist)."""
    if who.role is Role.AGENT and who.user.cluster and who.user.cluster != cluster_id:
        raise Forbidden(f"this token posts for cluster {who.user.cluster!r} only")


def _typed(obj: dict[str, Any]) -> dict[str, Any]:
    """A typed list as the API answers it (``DeploymentList``, items without ``kind``) with each item's
    kind and apiVersion filled in, as ``kubectl get -o json`` prints them."""
    kind = obj.get("kind")
    items = obj.get("items")
    if isinstance(kind, str) and kind.endswith("List") and kind != "List" and isinstance(items, list):
        item_kind = kind[: -len("List")]
        api = obj.get("apiVersion", "v1")
        obj["items"] = [
            {"kind": item_kind, "apiVersion": api, **i} if isinstance(i, dict) and "kind" not in i else i for i in items
        ]
    return obj


def prepare_snapshot(body: bytes) -> tuple[bytes, int]:
    """The posted body as the snapshot file the posture input reads, and how many objects it holds.

    Accepted: the output of ``kubectl get … -A -o json`` (a ``List``), an API list (``PodList``…), one
    object, or a JSON array of these; YAML (``-o yaml``) too. Raises :class:`InputError` for a body
    that holds no Kubernetes object (nothing is stored then)."""
    from garrison.posture.inputs import parse_text

    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InputError("the snapshot is not UTF-8 text") from None
    stripped = text.lstrip()
    if not stripped:
        raise InputError("the snapshot is empty")
    if stripped.startswith(("{", "[")):
        try:
            doc = orjson.loads(text)
        except orjson.JSONDecodeError as e:  # also nesting deeper than orjson's limit (1024)
            raise InputError(f"the snapshot is not valid JSON ({e.msg} at line {e.lineno})") from None
        docs = doc if isinstance(doc, list) else [doc]
        if not all(isinstance(d, dict) for d in docs):
            raise InputError("the snapshot: expected a List, an object, or an array of them")
        items = [_typed(d) for d in docs]
        body, n = orjson.dumps({"apiVersion": "v1", "kind": "List", "items": items}), _objects(items)
    else:
        loaded = parse_text(text, "snapshot")
        n = len(loaded.resources)
        if not n and loaded.warnings:
            raise InputError(loaded.warnings[0])
    if not n:
        raise InputError("the snapshot holds no Kubernetes object (expected `kubectl get … -A -o json`)")
    return body, n


def _objects(items: list[Any]) -> int:
    n = 0
    for i in items:
        if not isinstance(i, dict) or not isinstance(i.get("kind"), str):
            continue
        inner = i.get("items")
        if i["kind"].endswith("List") and isinstance(inner, list):
            n += _objects(inner)
        else:
            n += 1
    return n


def _exemption_entry(e: StoredExemption | ExemptionIn, by: str = "") -> dict[str, Any]:
    """One stored exemption as an entry of the CLI's exemptions file."""
    entry: dict[str, Any] = {"controls": list(e.controls), "reason": e.reason}
    if e.namespaces:
        entry["namespaces"] = list(e.namespaces)
    if e.resources:
        entry["resources"] = list(e.resources)
    if e.selector is not None:
        entry["selector"] = e.selector
    if e.expires:
        entry["expires"] = e.expires
    if by:
        entry["by"] = by
    return entry


@dataclass(frozen=True)
class _Result:
    report: PostureReport
    findings: list[FindingIn]
    scores: list[ScoreIn]
    summary: dict[str, Any]
    duration_ms: int


def _assess(body: bytes, exemptions: Sequence[StoredExemption], today: dt.date | None = None) -> _Result:
    """The posture engine on one snapshot (the CLI's ``garrison posture snapshot:FILE --exemptions FILE``)."""
    from garrison.services.posture import PostureOptions, assess

    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="garrison-assess-") as tmp:
        snap = Path(tmp) / ("snapshot.json" if body.lstrip()[:1] in (b"{", b"[") else "snapshot.yaml")
        snap.write_bytes(body)
        ex_file = None
        if exemptions:
            ex_file = Path(tmp) / "exemptions.yaml"
            doc = {"exemptions": [_exemption_entry(e, e.created_by) for e in exemptions]}
            ex_file.write_text(json.dumps(doc), encoding="utf-8")  # JSON is YAML
        report = assess([f"snapshot:{snap}"], PostureOptions(exemptions_file=ex_file, today=today))
        # The temporary names out of what is kept: "snapshot" and "exemption <id>".
        origins = {f"{ex_file} exemption {i + 1}": e for i, e in enumerate(exemptions)}
        names = sorted(origins, key=len, reverse=True)

        def clean(text: str) -> str:
            for o in names:
                text = text.replace(o, f"exemption {origins[o].id}")
            return text.replace(str(snap), "snapshot")

        findings: list[FindingIn] = []
        decided = [(f, None) for f in report.findings] + [(s.finding, s.suppression) for s in report.exempted]
        for f, why in decided:
            m = f.detail
            if not isinstance(m, Misconfiguration):
                continue
            o = m.object
            stored = origins.get(why.origin) if why else None
            findings.append(
                FindingIn(
                    control_id=m.control_id,
                    title=m.title,
                    severity=m.severity.name,
                    rank=int(m.severity),
                    family=m.family,
                    frameworks=list(m.frameworks),
                    kind=o.kind,
                    namespace=o.namespace,
                    name=o.name,
                    object=o.display(),
                    container=m.container,
                    path=m.path,
                    actual=m.actual,
                    expected=m.expected,
                    remediation=m.remediation,
                    exempted=why is not None,
                    exemption_id=stored.id if stored else 0,
                    exempt_reason=why.reason if why else "",
                    exempt_origin=clean(why.origin) if why else "",
                )
            )
        warnings = [clean(w) for w in report.all_warnings()]
    scores: list[ScoreIn] = []
    score_doc: dict[str, Any] | None = None
    if report.score is not None:
        sc = report.score
        scopes = [("overall", "", sc.overall)]
        scopes += [("framework", k, v) for k, v in sc.by_framework.items()]
        scopes += [("namespace", k, v) for k, v in sc.by_namespace.items()]
        scores = [ScoreIn(scope, name, v.score, v.checks, v.passed, v.failed, v.exempted) for scope, name, v in scopes]
        score_doc = sc.as_dict()
    summary = {
        "resources": dict(sorted(report.resources.items())),
        "unassessed_kinds": dict(sorted(report.unassessed_kinds.items())),
        "owned_skipped": report.owned_skipped,
        "documents": report.documents,
        "skipped_documents": report.skipped_documents,
        "controls": len(report.controls),
        "warnings": warnings[:MAX_WARNINGS],
        "warnings_total": len(warnings),
        "score": score_doc,
    }
    ms = int((time.perf_counter() - started) * 1000)
    return _Result(report, findings, scores, summary, ms)


def _exemptions_for(tx: Repositories, cluster_id: str) -> list[StoredExemption]:
    out: list[StoredExemption] = []
    offset = 0
    while True:
        page = tx.clusters.list_exemptions(cluster_id, 1000, offset)
        out.extend(page.items)
        offset += len(page.items)
        if not page.items or offset >= page.total:
            return out


def _finish(tx: Repositories, actor: str, assessment_id: int, r: _Result) -> Assessment:
    at = now_iso()
    overall = r.report.score.overall.score if r.report.score else None
    done = tx.clusters.finish_assessment(
        assessment_id,
        at,
        resources=sum(r.report.resources.values()),
        score=overall,
        summary=r.summary,
        duration_ms=r.duration_ms,
        findings=r.findings,
        scores=r.scores,
    )
    detail = {"assessment": assessment_id, "findings": done.findings, "exempted": done.exempted, "score": overall}
    tx.audit.append(at, actor, "cluster.assess", "cluster", done.cluster_id, "", detail)
    return done


def post_snapshot(store: Store, who: Principal, cluster_id: str, body: bytes, queue: Queue | None = None) -> Assessment:
    """A snapshot of ``cluster_id``. Without a queue it is assessed now and the finished assessment is
    returned; with one it is stored and the ``assess_cluster`` job queued (the assessment is returned
    ``queued``; ``GET …/assessments/{id}`` follows it). A body with no Kubernetes object is refused
    before anything is stored."""
    _may_post(who, cluster_id)
    with store.transaction() as tx:
        _get(tx, cluster_id)
        exemptions = _exemptions_for(tx, cluster_id)
    snapshot, objects = prepare_snapshot(body)
    actor = who.user.name
    if queue is None:
        result = _assess(snapshot, exemptions)
        with store.transaction() as tx:
            a = tx.clusters.add_assessment(cluster_id, actor, now_iso(), "running")
            tx.audit.append(
                a.received_at,
                actor,
                "cluster.snapshot",
                "cluster",
                cluster_id,
                "",
                {"assessment": a.id, "objects": objects, "bytes": len(body)},
            )
            return _finish(tx, actor, a.id, result)
    with store.transaction() as tx:
        a = tx.clusters.add_assessment(cluster_id, actor, now_iso(), "queued")
        tx.clusters.put_snapshot(a.id, snapshot)
        tx.audit.append(
            a.received_at,
            actor,
            "cluster.snapshot",
            "cluster",
            cluster_id,
            "",
            {"assessment": a.id, "objects": objects, "bytes": len(body)},
        )
    try:
        queue.enqueue(TASK, {"assessment": a.id}, lock=f"cluster:{cluster_id}")
    except Exception:
        with store.transaction() as tx:
            tx.clusters.set_assessment_status(a.id, "failed", "the assessment could not be queued", now_iso())
        raise
    with store.transaction() as tx:
        got = tx.clusters.get_assessment(a.id)
    assert got is not None
    return got


def run_assessment(store: Store, assessment_id: int, today: dt.date | None = None) -> Assessment | None:
    """Assess a queued snapshot and store the results. Safe to run again (a job killed midway): a
    finished assessment, or one whose snapshot is gone, is left as it is."""
    with store.transaction() as tx:
        a = tx.clusters.get_assessment(assessment_id)
        if a is None or a.status in ("done", "failed"):
            return a
        body = tx.clusters.take_snapshot(assessment_id)
        if body is None:
            tx.clusters.set_assessment_status(assessment_id, "failed", "the snapshot is gone", now_iso())
            return tx.clusters.get_assessment(assessment_id)
        tx.clusters.set_assessment_status(assessment_id, "running")
        exemptions = _exemptions_for(tx, a.cluster_id)
    try:
        result = _assess(body, exemptions, today)
    except GarrisonError as e:
        with store.transaction() as tx:
            tx.clusters.set_assessment_status(assessment_id, "failed", str(e)[:1000], now_iso())
            tx.audit.append(
                now_iso(),
                "job",
                "cluster.assess",
                "cluster",
                a.cluster_id,
                str(e)[:1000],
                {"assessment": assessment_id, "failed": True},
            )
            return tx.clusters.get_assessment(assessment_id)
    with store.transaction() as tx:
        return _finish(tx, "job", assessment_id, result)


def run_assessment_job(ctx: JobContext, payload: dict[str, Any]) -> None:
    """The ``assess_cluster`` job: ``{"assessment": ID}``."""
    aid = payload.get("assessment")
    if not isinstance(aid, int):
        raise InputError("assess_cluster: payload needs an integer 'assessment'")
    run_assessment(ctx.store, aid)


def list_assessments(store: Store, cluster_id: str, limit: int = 100, offset: int = 0) -> Page[Assessment]:
    with store.transaction(readonly=True) as tx:
        _get(tx, cluster_id)
        return tx.clusters.list_assessments(cluster_id, limit, offset)


def get_assessment(store: Store, cluster_id: str, assessment_id: int) -> Assessment:
    with store.transaction(readonly=True) as tx:
        a = tx.clusters.get_assessment(assessment_id)
    if a is None or a.cluster_id != cluster_id:
        raise NotFound(f"no assessment {assessment_id} of cluster {cluster_id!r}")
    return a


# --- findings, recommendations, score ---------------------------------------------------------------


def finding_filter(
    framework: str = "", control: str = "", severity: str = "", namespace: str | None = None, status: str = ""
) -> FindingFilter:
    """Validated filters: a typo in a framework or control id is an error (never an empty page that
    looks like a clean cluster). ``severity``: a name (that severity and above: ``HIGH`` = HIGH and
    CRITICAL)."""
    from garrison.errors import UsageError
    from garrison.posture.controls import builtin_controls, select

    controls: tuple[str, ...] = ()
    if framework or control:
        try:
            chosen = select(builtin_controls(), (framework,) if framework else (), (control,) if control else ())
        except UsageError as e:
            raise InputError(str(e)) from None
        controls = tuple(c.id for c in chosen) or ("",)
    rank = 0
    if severity:
        name = severity.strip().upper().rstrip("+")
        if name not in Severity.__members__:
            raise InputError(f"severity {severity!r}: one of {', '.join(reversed(Severity.__members__))}")
        rank = int(Severity[name])
    if status not in ("", "open", "exempted"):
        raise InputError(f"status {status!r}: open or exempted")
    return FindingFilter(controls, rank, namespace, status)


def list_findings(
    store: Store, cluster_id: str, f: FindingFilter, limit: int = 100, offset: int = 0
) -> Page[ClusterFinding]:
    with store.transaction(readonly=True) as tx:
        _get(tx, cluster_id)
        return tx.clusters.findings(cluster_id, f, limit, offset)


def recommendations(
    store: Store, cluster_id: str, f: FindingFilter, limit: int = 100, offset: int = 0
) -> tuple[Cluster, Page[Recommendation]]:
    with store.transaction(readonly=True) as tx:
        c = _get(tx, cluster_id)
        return c, tx.clusters.recommendations(cluster_id, f, limit, offset)


@dataclass(frozen=True, slots=True)
class ScoreView:
    cluster: Cluster
    #: The latest assessment's scores (empty before the first one).
    current: list[ScorePoint]
    #: The chosen scope over time, newest first.
    history: Page[ScorePoint]
    scope: str
    name: str


def score(
    store: Store, cluster_id: str, framework: str = "", namespace: str = "", limit: int = 100, offset: int = 0
) -> ScoreView:
    """The current score (overall, per framework, per namespace) and the history of one scope: the
    overall score, or ``framework``'s, or ``namespace``'s."""
    from garrison.posture.controls import FRAMEWORKS

    if framework and namespace:
        raise InputError("framework or namespace, not both")
    if framework and framework not in FRAMEWORKS:
        raise InputError(f"unknown framework {framework!r}; known: {', '.join(FRAMEWORKS)}")
    scope, name = ("framework", framework) if framework else ("namespace", namespace) if namespace else ("overall", "")
    with store.transaction(readonly=True) as tx:
        c = _get(tx, cluster_id)
        current = tx.clusters.scores(c.assessment_id) if c.assessment_id else []
        history = tx.clusters.score_history(cluster_id, scope, name, limit, offset)
    return ScoreView(c, current, history, scope, name)


# --- exemptions --------------------------------------------------------------------------------------


def _str_list(value: Sequence[str], what: str) -> list[str]:
    out = [v.strip() for v in value]
    if any(not v or len(v) > 512 for v in out):
        raise InputError(f"{what}: non-empty strings of at most 512 characters")
    return out


def create_exemption(
    store: Store,
    who: Principal,
    controls: Sequence[str],
    reason: str,
    *,
    cluster: str = "",
    namespaces: Sequence[str] = (),
    resources: Sequence[str] = (),
    selector: dict[str, Any] | None = None,
    expires: str = "",
) -> StoredExemption:
    """An exemption with the semantics of an entry of the CLI's exemptions file (checked by the same
    parser: an unknown control id is an error naming the close match); applied from the next
    assessment of the clusters it covers (``cluster`` "": every cluster)."""
    from garrison.findings.exemptions import parse_exemptions
    from garrison.posture.controls import builtin_controls

    check_selector(selector)
    e = ExemptionIn(
        cluster=_cluster_id(cluster) if cluster else "",
        controls=_str_list(controls, "controls"),
        namespaces=_str_list(namespaces, "namespaces"),
        resources=_str_list(resources, "resources"),
        selector=selector,
        reason=reason.strip(),
        expires=expires.strip(),
    )
    doc = json.dumps({"exemptions": [_exemption_entry(e)]})
    try:
        (parsed,) = parse_exemptions(doc, "exemption", [c.id for c in builtin_controls()])
    except InputError as err:  # the file parser names the entry: here there is one, the request
        raise InputError(str(err).removeprefix("exemption exemption 1: ")) from None
    if parsed.expires is not None:
        e = ExemptionIn(
            e.cluster, e.controls, e.namespaces, e.resources, e.selector, e.reason, parsed.expires.isoformat()
        )
    at = now_iso()
    with store.transaction() as tx:
        if e.cluster:
            _get(tx, e.cluster)
        stored = tx.clusters.add_exemption(e, who.user.name, at)
        detail = {"cluster": e.cluster, "controls": e.controls, "expires": e.expires}
        tx.audit.append(at, who.user.name, "exemption.create", "exemption", str(stored.id), e.reason, detail)
        return stored


def list_exemptions(store: Store, cluster: str = "", limit: int = 100, offset: int = 0) -> Page[StoredExemption]:
    with store.transaction(readonly=True) as tx:
        return tx.clusters.list_exemptions(cluster or None, limit, offset)


def get_exemption(store: Store, exemption_id: int) -> StoredExemption:
    with store.transaction(readonly=True) as tx:
        e = tx.clusters.get_exemption(exemption_id)
    if e is None:
        raise NotFound(f"no exemption {exemption_id}")
    return e


def delete_exemption(store: Store, who: Principal, exemption_id: int, reason: str = "") -> StoredExemption:
    """Delete an exemption (from the next assessment its findings are open again); answers with it."""
    at = now_iso()
    with store.transaction() as tx:
        e = tx.clusters.get_exemption(exemption_id)
        if e is None:
            raise NotFound(f"no exemption {exemption_id}")
        tx.clusters.delete_exemption(exemption_id)
        tx.audit.append(
            at,
            who.user.name,
            "exemption.delete",
            "exemption",
            str(exemption_id),
            reason,
            {"controls": e.controls, "caught": e.caught},
        )
        return e


# --- alert suppression rules -------------------------------------------------------------------------


def create_suppression(
    store: Store,
    who: Principal,
    reason: str,
    *,
    rule: str = "",
    namespace: str = "",
    image: str = "",
    user: str = "",
    cluster: str = "",
    expires_at: str = "",
) -> SuppressionRule:
    """A rule that dismisses matching alerts as they arrive (globs on rule, namespace, image, user,
    cluster; at least one), with a reason and an optional expiry."""
    fields = {"rule": rule, "namespace": namespace, "image": image, "user": user, "cluster": cluster}
    fields = {k: v.strip() for k, v in fields.items()}
    if not any(fields.values()):
        raise InputError("a suppression needs at least one of rule, namespace, image, user, cluster")
    if not reason.strip():
        raise InputError("a suppression needs a reason")
    at = now_iso()
    expires = ""
    if expires_at:
        try:
            expires = normalize_iso(expires_at)
        except ValueError:
            raise InputError("expires_at: an ISO 8601 time (2027-01-31T00:00:00Z)") from None
        if expires <= at:
            raise InputError("expires_at is in the past")
    s = SuppressionIn(**fields, reason=reason.strip(), expires_at=expires)
    with store.transaction() as tx:
        stored = tx.clusters.add_suppression(s, who.user.name, at)
        detail = {**{k: v for k, v in fields.items() if v}, "expires_at": expires}
        tx.audit.append(at, who.user.name, "suppression.create", "suppression", str(stored.id), s.reason, detail)
        return stored


def list_suppressions(store: Store, limit: int = 100, offset: int = 0) -> Page[SuppressionRule]:
    with store.transaction(readonly=True) as tx:
        return tx.clusters.list_suppressions(limit, offset)


def get_suppression(store: Store, suppression_id: int) -> SuppressionRule:
    with store.transaction(readonly=True) as tx:
        s = tx.clusters.get_suppression(suppression_id)
    if s is None:
        raise NotFound(f"no suppression {suppression_id}")
    return s


def delete_suppression(store: Store, who: Principal, suppression_id: int, reason: str = "") -> SuppressionRule:
    """Delete a rule: future alerts are no longer dismissed by it (those it dismissed stay dismissed)."""
    at = now_iso()
    with store.transaction() as tx:
        s = tx.clusters.get_suppression(suppression_id)
        if s is None:
            raise NotFound(f"no suppression {suppression_id}")
        tx.clusters.delete_suppression(suppression_id)
        tx.audit.append(
            at, who.user.name, "suppression.delete", "suppression", str(suppression_id), reason, {"caught": s.caught}
        )
        return s
