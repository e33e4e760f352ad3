"""The routers of posture results: ``/clusters`` (registration, snapshots, assessments, findings,
recommendations, score), ``/exemptions`` and ``/suppressions``; :data:`ROUTERS` are mounted under
``/api/v1`` by :mod:`.app`. Each route: its role rule, one service call, the record as its answer."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from garrison.posture.score import CLUSTER_SCOPED
from garrison.server.auth import POSTERS, READERS, TRIAGERS, StoreDep, allow
from garrison.server.schemas import (
    AssessmentOut,
    AssessmentPage,
    ClusterFindingOut,
    ClusterFindingPage,
    ClusterIn,
    ClusterOut,
    ClusterPage,
    ExemptionIn,
    ExemptionOut,
    ExemptionPage,
    NewClusterOut,
    NewTokenOut,
    RecommendationOut,
    RecommendationPage,
    ScoreHistory,
    ScoreOut,
    ScorePointOut,
    SuppressionIn,
    SuppressionOut,
    SuppressionPage,
    TokenOut,
    UserOut,
)
from garrison.services import clusters as svc
from garrison.services.server import Principal
from garrison.store.records import Role

Limit = Annotated[int, Query(ge=1, le=1000, description="page size")]
Offset = Annotated[int, Query(ge=0, le=10_000_000, description="items to skip")]
Admin = Annotated[Principal, Depends(allow(Role.ADMIN))]
Reader = Annotated[Principal, Depends(allow(*READERS))]
Triager = Annotated[Principal, Depends(allow(*TRIAGERS))]
Poster = Annotated[Principal, Depends(allow(*POSTERS))]
ClusterId = Annotated[str, Query(max_length=63)]
Reason = Annotated[str, Query(max_length=4096, description="why (kept in the audit log)")]

#: What the snapshot route reads (the body limit of :mod:`.app` bounds it: see ``SNAPSHOT_PATHS``).
SNAPSHOT_TYPES = ("application/json", "application/yaml", "application/x-yaml", "text/yaml")

clusters = APIRouter(prefix="/clusters", tags=["clusters"])
exemptions = APIRouter(prefix="/exemptions", tags=["exemptions"])
suppressions = APIRouter(prefix="/suppressions", tags=["suppressions"])

_Framework = Annotated[str, Query(max_length=64, description="pss-baseline, pss-restricted, cis-kubernetes, nsa…")]
_Control = Annotated[str, Query(max_length=64, description="a control id (GAR-PSS-001)")]
_Severity = Annotated[str, Query(max_length=16, description="this severity and above (HIGH: HIGH and CRITICAL)")]
_Namespace = Annotated[str, Query(max_length=256, description=f'a namespace ("{CLUSTER_SCOPED}" for none)')]
_Status = Annotated[str, Query(max_length=16, description="open or exempted (default both)")]


@clusters.post("", response_model=NewClusterOut, status_code=201, summary="register a cluster and its agent (admin)")
def create_cluster(store: StoreDep, who: Admin, body: ClusterIn) -> NewClusterOut:
    n = svc.create_cluster(store, who, body.id, body.name, body.description)
    return NewClusterOut(
        cluster=ClusterOut.model_validate(n.cluster),
        agent=UserOut.model_validate(n.agent),
        token=NewTokenOut(token=TokenOut.model_validate(n.token.token), secret=n.token.secret),
    )


@clusters.get("", response_model=ClusterPage, summary="list clusters with their latest score")
def list_clusters(store: StoreDep, _: Reader, limit: Limit = 100, offset: Offset = 0) -> ClusterPage:
    page = svc.list_clusters(store, limit, offset)
    items = [ClusterOut.model_validate(c) for c in page.items]
    return ClusterPage(items=items, total=page.total, limit=limit, offset=offset)


@clusters.get("/{cluster_id}", response_model=ClusterOut, summary="one cluster")
def get_cluster(store: StoreDep, _: Reader, cluster_id: str) -> ClusterOut:
    return ClusterOut.model_validate(svc.get_cluster(store, cluster_id))


@clusters.post(
    "/{cluster_id}/snapshot",
    response_model=AssessmentOut,
    summary="post a snapshot (`kubectl get … -A -o json`) to assess; the cluster's agent or an admin",
    openapi_extra={
        "requestBody": {"required": True, "content": {t: {"schema": {"type": "object"}} for t in SNAPSHOT_TYPES}}
    },
    responses={202: {"model": AssessmentOut, "description": "queued for the assess_cluster job"}},
)
async def post_snapshot(
    request: Request, response: Response, store: StoreDep, who: Poster, cluster_id: str
) -> AssessmentOut:
    ctype = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if ctype not in SNAPSHOT_TYPES:
        raise HTTPException(
            415, f"a snapshot is one of {', '.join(SNAPSHOT_TYPES)} (got {ctype or 'no content type'!r})"
        )
    body = await request.body()  # bounded by the app's body limit
    queue = getattr(request.app.state, "queue", None)
    a = await run_in_threadpool(svc.post_snapshot, store, who, cluster_id, body, queue)
    if a.status in ("queued", "running"):
        response.status_code = 202
    return AssessmentOut.model_validate(a)


@clusters.get(
    "/{cluster_id}/assessments", response_model=AssessmentPage, summary="a cluster's assessments, newest first"
)
def list_assessments(
    store: StoreDep, _: Reader, cluster_id: str, limit: Limit = 100, offset: Offset = 0
) -> AssessmentPage:
    page = svc.list_assessments(store, cluster_id, limit, offset)
    items = [AssessmentOut.model_validate(a) for a in page.items]
    return AssessmentPage(items=items, total=page.total, limit=limit, offset=offset)


@clusters.get("/{cluster_id}/assessments/{assessment_id}", response_model=AssessmentOut, summary="one assessment")
def get_assessment(store: StoreDep, _: Reader, cluster_id: str, assessment_id: int) -> AssessmentOut:
    return AssessmentOut.model_validate(svc.get_assessment(store, cluster_id, assessment_id))


@clusters.get(
    "/{cluster_id}/recommendations",
    response_model=RecommendationPage,
    summary="the latest assessment's findings grouped by control: most severe first, then widest blast radius",
)
def recommendations(
    store: StoreDep,
    _: Reader,
    cluster_id: str,
    framework: _Framework = "",
    control: _Control = "",
    severity: _Severity = "",
    namespace: _Namespace = "",
    status: _Status = "",
    limit: Limit = 100,
    offset: Offset = 0,
) -> RecommendationPage:
    f = svc.finding_filter(framework, control, severity, _ns(namespace), status)
    c, page = svc.recommendations(store, cluster_id, f, limit, offset)
    return RecommendationPage(
        cluster=c.id,
        assessment_id=c.assessment_id,
        assessed_at=c.assessed_at,
        items=[RecommendationOut.model_validate(r) for r in page.items],
        total=page.total,
        limit=limit,
        offset=offset,
    )


def _ns(namespace: str) -> str | None:
    """ "" any namespace; the score's label of cluster-scoped objects names the stored "" namespace."""
    return None if not namespace else "" if namespace == CLUSTER_SCOPED else namespace


@clusters.get("/{cluster_id}/findings", response_model=ClusterFindingPage, summary="the latest assessment's findings")
def findings(
    store: StoreDep,
    _: Reader,
    cluster_id: str,
    framework: _Framework = "",
    control: _Control = "",
    severity: _Severity = "",
    namespace: _Namespace = "",
    status: _Status = "",
    limit: Limit = 100,
    offset: Offset = 0,
) -> ClusterFindingPage:
    f = svc.finding_filter(framework, control, severity, _ns(namespace), status)
    page = svc.list_findings(store, cluster_id, f, limit, offset)
    items = [ClusterFindingOut.model_validate(x) for x in page.items]
    return ClusterFindingPage(items=items, total=page.total, limit=limit, offset=offset)


@clusters.get("/{cluster_id}/score", response_model=ScoreOut, summary="the secure score now and over time")
def score(
    store: StoreDep,
    _: Reader,
    cluster_id: str,
    framework: Annotated[str, Query(max_length=64, description="history of this framework's score")] = "",
    namespace: Annotated[str, Query(max_length=256, description="history of this namespace's score")] = "",
    limit: Limit = 100,
    offset: Offset = 0,
) -> ScoreOut:
    v = svc.score(store, cluster_id, framework, namespace, limit, offset)
    points = [ScorePointOut.model_validate(p) for p in v.current]
    overall = next((p for p in points if p.scope == "overall"), None)
    return ScoreOut(
        cluster=v.cluster.id,
        assessment_id=v.cluster.assessment_id,
        assessed_at=v.cluster.assessed_at,
        overall=overall,
        by_framework={p.name: p for p in points if p.scope == "framework"},
        by_namespace={p.name: p for p in points if p.scope == "namespace"},
        history=ScoreHistory(
            scope=v.scope,
            name=v.name,
            items=[ScorePointOut.model_validate(p) for p in v.history.items],
            total=v.history.total,
            limit=limit,
            offset=offset,
        ),
        formula=svc.FORMULA,
    )


# --- exemptions ---------------------------------------------------------------------------------------


@exemptions.post("", response_model=ExemptionOut, status_code=201, summary="exempt posture findings (security-admin)")
def create_exemption(store: StoreDep, who: Triager, body: ExemptionIn) -> ExemptionOut:
    e = svc.create_exemption(
        store,
        who,
        body.controls,
        body.reason,
        cluster=body.cluster,
        namespaces=body.namespaces,
        resources=body.resources,
        selector=body.selector,
        expires=body.expires,
    )
    return ExemptionOut.model_validate(e)


@exemptions.get("", response_model=ExemptionPage, summary="list exemptions, each with the findings it caught")
def list_exemptions(
    store: StoreDep, _: Reader, cluster: ClusterId = "", limit: Limit = 100, offset: Offset = 0
) -> ExemptionPage:
    page = svc.list_exemptions(store, cluster, limit, offset)
    items = [ExemptionOut.model_validate(e) for e in page.items]
    return ExemptionPage(items=items, total=page.total, limit=limit, offset=offset)


@exemptions.get("/{exemption_id}", response_model=ExemptionOut, summary="one exemption")
def get_exemption(store: StoreDep, _: Reader, exemption_id: int) -> ExemptionOut:
    return ExemptionOut.model_validate(svc.get_exemption(store, exemption_id))


@exemptions.delete("/{exemption_id}", response_model=ExemptionOut, summary="delete an exemption (answers with it)")
def delete_exemption(store: StoreDep, who: Triager, exemption_id: int, reason: Reason = "") -> ExemptionOut:
    return ExemptionOut.model_validate(svc.delete_exemption(store, who, exemption_id, reason))


# --- suppressions -------------------------------------------------------------------------------------


@suppressions.post(
    "", response_model=SuppressionOut, status_code=201, summary="dismiss future matching alerts (security-admin)"
)
def create_suppression(store: StoreDep, who: Triager, body: SuppressionIn) -> SuppressionOut:
    s = svc.create_suppression(
        store,
        who,
        body.reason,
        rule=body.rule,
        namespace=body.namespace,
        image=body.image,
        user=body.user,
        cluster=body.cluster,
        expires_at=body.expires_at,
    )
    return SuppressionOut.model_validate(s)


@suppressions.get("", response_model=SuppressionPage, summary="list suppression rules, each with the alerts it caught")
def list_suppressions(store: StoreDep, _: Reader, limit: Limit = 100, offset: Offset = 0) -> SuppressionPage:
    page = svc.list_suppressions(store, limit, offset)
    items = [SuppressionOut.model_validate(s) for s in page.items]
    return SuppressionPage(items=items, total=page.total, limit=limit, offset=offset)


@suppressions.get("/{suppression_id}", response_model=SuppressionOut, summary="one suppression rule")
def get_suppression(store: StoreDep, _: Reader, suppression_id: int) -> SuppressionOut:
    return SuppressionOut.model_validate(svc.get_suppression(store, suppression_id))


@suppressions.delete(
    "/{suppression_id}", response_model=SuppressionOut, summary="delete a suppression rule (answers with it)"
)
def delete_suppression(store: StoreDep, who: Triager, suppression_id: int, reason: Reason = "") -> SuppressionOut:
    return SuppressionOut.model_validate(svc.delete_suppression(store, who, suppression_id, reason))


ROUTERS: list[APIRouter] = [clusters, exemptions, suppressions]
