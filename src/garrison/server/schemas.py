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
    resolved_by: str
    resolved_reason: str
    resolved_at: str


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
    suppressed: int = Field(description="alerts a suppression rule dismissed as they arrived (stored, dismissed)")
    recurred: int = Field(0, description="resolved alerts that happened again and are active again (notified)")


# --- clusters, assessments, recommendations, score, exemptions, suppressions ------------------------


class ClusterIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str = Field(min_length=1, max_length=63, description="a-z, 0-9, '-', '.', '_' (in URLs and on alerts)")
    name: str = Field(default="", max_length=256)
    description: str = Field(default="", max_length=4096)


class ClusterOut(_Out):
    id: str
    name: str
    description: str
    agent_user_id: int
    created_by: str
    created_at: str
    assessment_id: int = Field(description="the latest finished assessment (0: none yet)")
    assessed_at: str
    score: float | None = Field(description="that assessment's overall secure score (null: none)")


class NewClusterOut(BaseModel):
    cluster: ClusterOut
    agent: UserOut
    token: NewTokenOut


class ClusterPage(_Page):
    items: list[ClusterOut]


class AssessmentOut(_Out):
    id: int
    cluster_id: str
    status: str = Field(description="queued, running, done or failed")
    posted_by: str
    received_at: str
    finished_at: str
    resources: int
    findings: int = Field(description="open findings")
    exempted: int
    score: float | None
    summary: dict[str, Any] = Field(description="objects per kind, unassessed kinds, warnings, the score document")
    error: str
    duration_ms: int


class AssessmentPage(_Page):
    items: list[AssessmentOut]


class ClusterFindingOut(_Out):
    id: int
    cluster_id: str
    assessment_id: int
    control_id: str
    title: str
    severity: str
    family: str
    frameworks: list[str]
    kind: str
    namespace: str
    name: str
    object: str = Field(description="Kind/namespace/name (Kind/name when cluster-scoped)")
    container: str
    path: str
    actual: str
    expected: str
    remediation: str
    exempted: bool
    exemption_id: int = Field(description="the stored exemption that caught it (0: none, or an annotation)")
    exempt_reason: str
    exempt_origin: str


class ClusterFindingPage(_Page):
    items: list[ClusterFindingOut]


class RecommendationOut(_Out):
    control_id: str
    title: str
    severity: str
    remediation: str
    objects: list[str] = Field(description="objects with an open finding of the control (the blast radius)")
    findings: int
    exempted_objects: list[str]
    exempted: int
    namespaces: list[str]


class RecommendationPage(_Page):
    cluster: str
    assessment_id: int
    assessed_at: str
    items: list[RecommendationOut]


class ScorePointOut(_Out):
    assessment_id: int
    at: str
    scope: str
    name: str
    score: float | None = Field(description="0-100; null when no control applied")
    checks: int
    passed: int
    failed: int
    exempted: int


class ScoreHistory(_Page):
    scope: str
    name: str
    items: list[ScorePointOut]


class ScoreOut(BaseModel):
    cluster: str
    assessment_id: int
    assessed_at: str
    overall: ScorePointOut | None
    by_framework: dict[str, ScorePointOut]
    by_namespace: dict[str, ScorePointOut]
    history: ScoreHistory
    formula: str


class ExemptionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    controls: list[str] = Field(min_length=1, max_length=200, description='control ids, or "*"')
    reason: str = Field(min_length=1, max_length=4096)
    cluster: str = Field(default="", max_length=63, description='"" every cluster')
    namespaces: list[str] = Field(default_factory=list, max_length=200)
    resources: list[str] = Field(default_factory=list, max_length=200, description="globs on Kind/namespace/name")
    selector: dict[str, Any] | None = Field(
        default=None, description="a label selector (matchLabels, matchExpressions)"
    )
    expires: str = Field(default="", max_length=10, description="last day it applies, YYYY-MM-DD")


class ExemptionOut(_Out):
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
    caught: int = Field(description="findings of the clusters' latest assessments it exempts")


class ExemptionPage(_Page):
    items: list[ExemptionOut]


class SuppressionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(min_length=1, max_length=4096)
    rule: str = Field(default="", max_length=256, description="glob on the rule name")
    namespace: str = Field(default="", max_length=256)
    image: str = Field(default="", max_length=512)
    user: str = Field(default="", max_length=256)
    cluster: str = Field(default="", max_length=256)
    expires_at: str = Field(default="", max_length=64, description="ISO 8601; empty: never")


class SuppressionOut(_Out):
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
    caught: int = Field(description="alerts it dismissed as they arrived")
    last_caught_at: str


class SuppressionPage(_Page):
    items: list[SuppressionOut]


class ErrorOut(BaseModel):
    error: str
    status: int


class Health(BaseModel):
    status: str
