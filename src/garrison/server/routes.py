"""The ``/api/v1`` routers. Each route: its role rule as a dependency, then one service call, then the
record as its response model. Every change answers with the changed object."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from starlette.concurrency import run_in_threadpool

from garrison.server.auth import POSTERS, READERS, TRIAGERS, StoreDep, allow
from garrison.server.schemas import (
    AlertOut,
    AlertPage,
    AuditEntryOut,
    AuditPage,
    DismissIn,
    IngestOut,
    NewTokenOut,
    NewUserOut,
    ReasonIn,
    TokenIn,
    TokenOut,
    TokenPage,
    UserIn,
    UserOut,
    UserPage,
)
from garrison.services import server as svc
from garrison.store.records import Role

Limit = Annotated[int, Query(ge=1, le=1000, description="page size")]
Offset = Annotated[int, Query(ge=0, le=10_000_000, description="items to skip")]
Admin = Annotated[svc.Principal, Depends(allow(Role.ADMIN))]
Reader = Annotated[svc.Principal, Depends(allow(*READERS))]
Triager = Annotated[svc.Principal, Depends(allow(*TRIAGERS))]
Poster = Annotated[svc.Principal, Depends(allow(*POSTERS))]
Anyone = Annotated[svc.Principal, Depends(allow(*Role))]
#: Token self-service changes: readers change nothing (their tokens are an admin's to manage).
TokenChanger = Annotated[svc.Principal, Depends(allow(Role.ADMIN, Role.SECURITY_ADMIN, Role.AGENT))]

users = APIRouter(prefix="/users", tags=["users"])
tokens = APIRouter(prefix="/tokens", tags=["tokens"])
alerts = APIRouter(prefix="/alerts", tags=["alerts"])
events = APIRouter(prefix="/events", tags=["events"])
audit = APIRouter(prefix="/audit-log", tags=["audit-log"])


def _new_token(n: svc.NewToken) -> NewTokenOut:
    return NewTokenOut(token=TokenOut.model_validate(n.token), secret=n.secret)


@users.get("", response_model=UserPage, summary="list users (admin)")
def list_users(store: StoreDep, _: Admin, limit: Limit = 100, offset: Offset = 0) -> UserPage:
    page = svc.list_users(store, limit, offset)
    return UserPage(items=[UserOut.model_validate(u) for u in page.items], total=page.total, limit=limit, offset=offset)


@users.post("", response_model=NewUserOut, status_code=201, summary="create a user and its first token (admin)")
def create_user(store: StoreDep, who: Admin, body: UserIn) -> NewUserOut:
    user, tok = svc.create_user(store, who.user.name, body.name, body.role.value, cluster=body.cluster)
    return NewUserOut(user=UserOut.model_validate(user), token=_new_token(tok))


@users.post("/{user_id}/disable", response_model=UserOut, summary="disable a user and so every token of theirs")
def disable_user(store: StoreDep, who: Admin, user_id: int, body: ReasonIn | None = None) -> UserOut:
    return UserOut.model_validate(svc.disable_user(store, who.user.name, user_id, body.reason if body else ""))


@tokens.get("", response_model=TokenPage, summary="your tokens (an admin: everyone's)")
def list_tokens(store: StoreDep, who: Anyone, limit: Limit = 100, offset: Offset = 0) -> TokenPage:
    page = svc.list_tokens(store, who, limit, offset)
    return TokenPage(
        items=[TokenOut.model_validate(t) for t in page.items], total=page.total, limit=limit, offset=offset
    )


@tokens.post("", response_model=NewTokenOut, status_code=201, summary="create a token (for yourself; admins: anyone)")
def create_token(store: StoreDep, who: TokenChanger, body: TokenIn) -> NewTokenOut:
    return _new_token(svc.create_token(store, who, body.name, body.user, body.expires_days))


@tokens.post("/{token_id}/revoke", response_model=TokenOut, summary="revoke a token (yours; admins: anyone's)")
def revoke_token(store: StoreDep, who: TokenChanger, token_id: int, body: ReasonIn | None = None) -> TokenOut:
    return TokenOut.model_validate(svc.revoke_token(store, who, token_id, body.reason if body else ""))


@alerts.get("", response_model=AlertPage, summary="list alerts, newest last seen first")
def list_alerts(
    store: StoreDep,
    _: Reader,
    status: Annotated[str, Query(max_length=16, description="active, dismissed or resolved")] = "",
    severity: Annotated[str, Query(max_length=16, description="CRITICAL, HIGH, MEDIUM, LOW…")] = "",
    rule: Annotated[str, Query(max_length=256)] = "",
    namespace: Annotated[str, Query(max_length=256)] = "",
    cluster: Annotated[str, Query(max_length=256)] = "",
    since: Annotated[str, Query(max_length=64, description="last seen at or after (ISO 8601)")] = "",
    until: Annotated[str, Query(max_length=64, description="last seen at or before (ISO 8601)")] = "",
    limit: Limit = 100,
    offset: Offset = 0,
) -> AlertPage:
    f = svc.alert_filter(status, severity, rule, namespace, cluster, since, until)
    page = svc.list_alerts(store, f, limit, offset)
    return AlertPage(
        items=[AlertOut.model_validate(a) for a in page.items], total=page.total, limit=limit, offset=offset
    )


@alerts.get("/{alert_id}", response_model=AlertOut, summary="one alert")
def get_alert(store: StoreDep, _: Reader, alert_id: int) -> AlertOut:
    return AlertOut.model_validate(svc.get_alert(store, alert_id))


@alerts.post("/{alert_id}/dismiss", response_model=AlertOut, summary="dismiss an alert, with a reason")
def dismiss_alert(store: StoreDep, who: Triager, alert_id: int, body: DismissIn) -> AlertOut:
    return AlertOut.model_validate(svc.dismiss_alert(store, who, alert_id, body.reason))


@alerts.post("/{alert_id}/resolve", response_model=AlertOut, summary="mark an alert resolved (the cause was fixed)")
def resolve_alert(store: StoreDep, who: Triager, alert_id: int, body: ReasonIn | None = None) -> AlertOut:
    return AlertOut.model_validate(svc.resolve_alert(store, who, alert_id, body.reason if body else ""))


@alerts.post("/{alert_id}/reopen", response_model=AlertOut, summary="reopen a dismissed or resolved alert")
def reopen_alert(store: StoreDep, who: Triager, alert_id: int, body: ReasonIn | None = None) -> AlertOut:
    return AlertOut.model_validate(svc.reopen_alert(store, who, alert_id, body.reason if body else ""))


@events.post(
    "/k8s-audit",
    response_model=IngestOut,
    summary="the Kubernetes audit webhook: an EventList (or one Event) of audit.k8s.io/v1",
    openapi_extra={"requestBody": {"required": True, "content": {"application/json": {"schema": {"type": "object"}}}}},
)
async def k8s_audit(
    request: Request,
    store: StoreDep,
    who: Poster,
    cluster: Annotated[str, Query(max_length=256, description="the events' cluster (a scoped agent: its own)")] = "",
) -> IngestOut:
    body = await request.body()  # bounded by the app's body limit
    queue = getattr(request.app.state, "queue", None)
    r = await run_in_threadpool(svc.ingest_audit, store, who, body, request.app.state.ruleset, cluster, queue)
    return _ingested(r)


def _ingested(r: svc.Ingested) -> IngestOut:
    return IngestOut(
        events=r.events,
        matches=r.matches,
        alerts=r.alerts,
        new_alerts=r.new_alerts,
        suppressed=r.suppressed,
        recurred=r.recurred,
    )


@events.post(
    "/node",
    response_model=IngestOut,
    summary='a node sensor\'s alerts: {"alerts": [alert, …]} as `garrison runtime sensor --webhook` posts them',
    openapi_extra={"requestBody": {"required": True, "content": {"application/json": {"schema": {"type": "object"}}}}},
)
async def node_events(
    request: Request,
    store: StoreDep,
    who: Poster,
    cluster: Annotated[str, Query(max_length=256, description="the alerts' cluster (a scoped agent: its own)")] = "",
) -> IngestOut:
    body = await request.body()  # bounded by the app's body limit
    queue = getattr(request.app.state, "queue", None)
    return _ingested(await run_in_threadpool(svc.ingest_node, store, who, body, cluster, queue))


@audit.get("", response_model=AuditPage, summary="the audit log, newest first (admin, security-admin)")
def audit_log(store: StoreDep, _: Triager, limit: Limit = 100, offset: Offset = 0) -> AuditPage:
    page = svc.list_audit_log(store, limit, offset)
    items = [AuditEntryOut.model_validate(e) for e in page.items]
    return AuditPage(items=items, total=page.total, limit=limit, offset=offset)


ROUTERS = (users, tokens, alerts, events, audit)
