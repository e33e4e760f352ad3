"""The API's request and response bodies (pydantic), one per record; these are the OpenAPI document's
schemas, so a dashboard needs nothing else."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from garrison.store.records import AlertStatus, Role


class _Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class UserOut(_Out):
    id: int
    name: str
    role: Role
    disabled: bool
    created_at: str
    cluster: str = Field(description='an agent\'s cluster ("" when unscoped)')


class TokenOut(_Out):
    id: int
    user_id: int
    name: str
    prefix: str = Field(description="the token's first characters, to recognise it")
    created_at: str
    expires_at: str = Field(description='"" when it does not expire')
    revoked_at: str = Field(description='"" while valid')


class NewTokenOut(BaseModel):
    token: TokenOut
    secret: str = Field(description="the bearer token: shown in this answer only, never again")


class NewUserOut(BaseModel):
    user: UserOut
    token: NewTokenOut


class AlertOut(_Out):
    id: int
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
    status: AlertStatus
    dismissed_by: str
    dismissed_reason: str
    dismissed_at: str
    updated_at: str


class AuditEntryOut(_Out):
    id: int
    at: str
    actor: str
    action: str
    target_type: str
    target_id: str
    reason: str
    detail: dict[str, Any]


class _Page(BaseModel):
    total: int = Field(description="how many items the filters match")
    limit: int
    offset: int


class UserPage(_Page):
    items: list[UserOut]


class TokenPage(_Page):
    items: list[TokenOut]


class AlertPage(_Page):
    items: list[AlertOut]


class AuditPage(_Page):
    items: list[AuditEntryOut]


class UserIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=128)
    role: Role
    cluster: str = Field(default="", max_length=256, description="agents only: the cluster it posts for")


class TokenIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(default="api", min_length=1, max_length=128)
    user: str = Field(default="", max_length=128, description="another user's name (admins only)")
    expires_days: int | None = Field(default=None, ge=1, le=3650)


class ReasonIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(default="", max_length=4096)


class DismissIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(min_length=1, max_length=4096, description="why (kept on the alert and in the audit log)")


class IngestOut(BaseModel):
    events: int
    matches: int
    alerts: int = Field(description="alerts the events folded into (new or counted onto stored ones)")
    new_alerts: int


class ErrorOut(BaseModel):
    error: str
    status: int


class Health(BaseModel):
    status: str
