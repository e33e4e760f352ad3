"""``/api/v1/notifications``: webhook and Slack targets (admins configure them; readers see them, without
their secrets) and each target's deliveries. :data:`ROUTERS` are mounted under ``/api/v1`` by :mod:`.app`."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from garrison.server.auth import READERS, StoreDep, allow
from garrison.services import notify as svc
from garrison.services.server import Principal
from garrison.services.settings import ServerSettings
from garrison.store.notify import Delivery, DeliveryStatus, NotificationTarget
from garrison.store.records import Role

Limit = Annotated[int, Query(ge=1, le=1000, description="page size")]
Offset = Annotated[int, Query(ge=0, le=10_000_000, description="items to skip")]
Admin = Annotated[Principal, Depends(allow(Role.ADMIN))]
Reader = Annotated[Principal, Depends(allow(*READERS))]


def settings_of(request: Request) -> ServerSettings:
    """The server's settings (where the secret key is): targets cannot be sealed or sent without them."""
    settings: ServerSettings | None = request.app.state.settings
    if settings is None:
        raise HTTPException(503, "this server runs without settings: notifications are unavailable")
    return settings


SettingsDep = Annotated[ServerSettings, Depends(settings_of)]


class _Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class NotificationIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=128)
    kind: Literal["webhook", "slack"] = Field(description="webhook: garrison's JSON; slack: an incoming webhook")
    url: str = Field(
        min_length=1, max_length=svc.MAX_URL, description="http(s) URL; kept sealed, never shown again (only its host)"
    )
    headers: dict[str, str] = Field(
        default_factory=dict,
        max_length=svc.MAX_HEADERS,
        description="extra request headers (an Authorization for a webhook); kept sealed, only their names shown",
    )
    events: list[Literal["image.findings.new", "image.findings.fixed", "alert.new"]] = Field(min_length=1, max_length=3)
    min_severity: str = Field(
        default=svc.DEFAULT_MIN_SEVERITY.name,
        max_length=16,
        description="least severity sent: UNKNOWN, NEGLIGIBLE, LOW, MEDIUM, HIGH, CRITICAL",
    )
    enabled: bool = True


class NotificationPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(default=None, min_length=1, max_length=128)
    url: str | None = Field(default=None, min_length=1, max_length=svc.MAX_URL, description="replaces the URL (sealed)")
    headers: dict[str, str] | None = Field(
        default=None, max_length=svc.MAX_HEADERS, description="replace every extra header ({} drops them; sealed)"
    )
    events: list[Literal["image.findings.new", "image.findings.fixed", "alert.new"]] | None = Field(
        default=None, min_length=1, max_length=3
    )
    min_severity: str | None = Field(default=None, max_length=16)
    enabled: bool | None = None


class NotificationOut(_Out):
    id: int
    name: str
    kind: str
    host: str = Field(description="the URL's host[:port]: all that is ever shown of it")
    header_names: list[str] = Field(description="the extra headers' names (their values are never shown)")
    events: list[str]
    min_severity: str
    enabled: bool
    created_by: str
    created_at: str


class NotificationPage(BaseModel):
    items: list[NotificationOut]
    total: int
    limit: int
    offset: int


class DeliveryOut(_Out):
    id: int
    target_id: int
    event: str
    title: str
    data: dict[str, object]
    status: DeliveryStatus
    attempts: int
    http_status: int = Field(description="the last attempt's HTTP status (0: no answer)")
    last_error: str
    created_at: str
    updated_at: str
    delivered_at: str


class DeliveryPage(BaseModel):
    items: list[DeliveryOut]
    total: int
    limit: int
    offset: int


class DeleteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(default="", max_length=4096)


def _out(t: NotificationTarget) -> NotificationOut:
    return NotificationOut.model_validate(t)


def _delivery(d: Delivery) -> DeliveryOut:
    return DeliveryOut.model_validate(d)


notifications = APIRouter(prefix="/notifications", tags=["notifications"])


@notifications.get("", response_model=NotificationPage, summary="notification targets (secrets never shown)")
def list_notifications(store: StoreDep, _: Reader, limit: Limit = 100, offset: Offset = 0) -> NotificationPage:
    page = svc.list_targets(store, limit, offset)
    return NotificationPage(items=[_out(t) for t in page.items], total=page.total, limit=limit, offset=offset)


@notifications.post(
    "", response_model=NotificationOut, status_code=201, summary="add a webhook or Slack target (admin)"
)
def create_notification(store: StoreDep, settings: SettingsDep, who: Admin, body: NotificationIn) -> NotificationOut:
    spec = svc.TargetSpec(
        name=body.name,
        kind=body.kind,
        url=body.url,
        headers=body.headers,
        events=tuple(body.events),
        min_severity=body.min_severity,
        enabled=body.enabled,
    )
    return _out(svc.create_target(store, settings, who, spec))


@notifications.get("/{target_id}", response_model=NotificationOut, summary="one notification target")
def get_notification(store: StoreDep, _: Reader, target_id: int) -> NotificationOut:
    return _out(svc.get_target(store, target_id))


@notifications.patch("/{target_id}", response_model=NotificationOut, summary="change a target (admin)")
def update_notification(
    store: StoreDep, settings: SettingsDep, who: Admin, target_id: int, body: NotificationPatch
) -> NotificationOut:
    change = svc.TargetChange(
        name=body.name,
        url=body.url,
        headers=body.headers,
        events=tuple(body.events) if body.events is not None else None,
        min_severity=body.min_severity,
        enabled=body.enabled,
    )
    return _out(svc.update_target(store, settings, who, target_id, change))


@notifications.delete(
    "/{target_id}", response_model=NotificationOut, summary="delete a target and its deliveries (admin)"
)
def delete_notification(store: StoreDep, who: Admin, target_id: int, body: DeleteIn | None = None) -> NotificationOut:
    return _out(svc.delete_target(store, who, target_id, body.reason if body else ""))


@notifications.post(
    "/{target_id}/test",
    response_model=DeliveryOut,
    summary="send a test notification now, one attempt, and answer what became of it (admin)",
)
def test_notification(store: StoreDep, settings: SettingsDep, who: Admin, target_id: int) -> DeliveryOut:
    return _delivery(svc.send_test(store, settings, who, target_id))


@notifications.get(
    "/{target_id}/deliveries", response_model=DeliveryPage, summary="a target's deliveries, newest first"
)
def list_deliveries(
    store: StoreDep,
    _: Reader,
    target_id: int,
    status: Annotated[str, Query(max_length=16, description="pending, delivered or failed")] = "",
    limit: Limit = 100,
    offset: Offset = 0,
) -> DeliveryPage:
    page = svc.list_deliveries(store, target_id, status, limit, offset)
    return DeliveryPage(items=[_delivery(d) for d in page.items], total=page.total, limit=limit, offset=offset)


ROUTERS: list[APIRouter] = [notifications]
