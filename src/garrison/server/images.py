"""Registry continuous assessment over HTTP: ``registries`` (and each one's ``notifications`` webhook for
distribution), ``scans``, ``images`` and ``images/{digest}/findings``. Routers call
:mod:`garrison.services.registry` only; request and response bodies are declared here, so the OpenAPI
document describes them. Credentials go in and never come out (``has_credentials``)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from garrison.jobs import Queue
from garrison.server.auth import READERS, StoreDep, allow
from garrison.server.schemas import NewTokenOut, TokenOut
from garrison.services import registry as reg
from garrison.services import server as svc
from garrison.services.settings import ServerSettings
from garrison.store.records import Role

Limit = Annotated[int, Query(ge=1, le=1000, description="page size")]
Offset = Annotated[int, Query(ge=0, le=10_000_000, description="items to skip")]
Admin = Annotated[svc.Principal, Depends(allow(Role.ADMIN))]
Reader = Annotated[svc.Principal, Depends(allow(*READERS))]
#: Who may ask for a scan (a registry's agent gets its scans through its notifications).
Scanner = Annotated[svc.Principal, Depends(allow(Role.ADMIN, Role.SECURITY_ADMIN))]
#: Who may post a registry's notifications: its agent (checked against the registry) or an admin.
Notifier = Annotated[svc.Principal, Depends(allow(Role.ADMIN, Role.AGENT))]


def _queue(request: Request) -> Queue:
    queue: Queue | None = request.app.state.queue
    if queue is None:
        raise HTTPException(503, "this server has no job queue")
    return queue


def _settings(request: Request) -> ServerSettings:
    settings: ServerSettings | None = request.app.state.settings
    if settings is None:
        raise HTTPException(503, "this server has no settings (the secret key's folder)")
    return settings


QueueDep = Annotated[Queue, Depends(_queue)]
SettingsDep = Annotated[ServerSettings, Depends(_settings)]


# --- bodies -------------------------------------------------------------------------------------------


class _Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class RegistryIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=64, description="a-z 0-9 . _ - ; names its notification user")
    url: str = Field(min_length=1, max_length=512, description="http(s)://HOST[:PORT]; http:// allows plain HTTP")
    username: str = Field(default="", max_length=4096)
    password: str = Field(default="", max_length=4096, description="stored sealed, never returned")
    token: str = Field(default="", max_length=4096, description="a static bearer token instead (sealed)")
    scan_on_push: bool = True


class RegistryPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: str | None = Field(default=None, max_length=512)
    username: str | None = Field(default=None, max_length=4096)
    password: str | None = Field(default=None, max_length=4096)
    token: str | None = Field(default=None, max_length=4096)
    clear_credentials: bool = False
    scan_on_push: bool | None = None


class RegistryOut(_Out):
    id: int
    name: str
    url: str
    host: str
    has_credentials: bool = Field(description="credentials are stored (sealed; they are never returned)")
    agent_user_id: int | None = Field(description="the agent user whose token posts this registry's notifications")
    scan_on_push: bool
    created_at: str
    updated_at: str


class NewRegistryOut(BaseModel):
    registry: RegistryOut
    notification_token: NewTokenOut = Field(
        description="the token the registry sends as `Authorization: Bearer …` in its notifications (shown once)"
    )


class RegistryPage(BaseModel):
    items: list[RegistryOut]
    total: int
    limit: int
    offset: int


class NotificationOut(BaseModel):
    events: int
    queued: list[int] = Field(description="the ids of the scans queued for pushed manifests")
    duplicates: int = Field(description="pushed manifests already queued, running or scanned just now")
    pulls: int
    ignored: int = Field(description="blob events, other actions and malformed events")


class ScanIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reference: str = Field(min_length=1, max_length=1024, description="HOST/REPOSITORY:TAG or …@sha256:…")
    registry_id: int | None = Field(default=None, description="the configured registry to pull with")


class ScanOut(_Out):
    id: int
    reference: str
    registry_id: int | None
    digest: str
    status: str = Field(description="queued, running, done or failed")
    error: str
    requested_by: str
    source: str = Field(description="api, push or harbor")
    created_at: str
    started_at: str
    finished_at: str
    counts: dict[str, int] = Field(description="open findings by severity, once done")


class ScanPage(BaseModel):
    items: list[ScanOut]
    total: int
    limit: int
    offset: int


class TagOut(_Out):
    registry: str
    repository: str
    tag: str = Field(description='"" when seen by digest only')
    first_seen: str
    last_seen: str
    last_pushed: str
    last_pulled: str


class ImageOut(BaseModel):
    digest: str
    config_digest: str
    architecture: str
    os: str
    packages: int
    repositories: list[str] = Field(description="registry/repository names the image was seen in")
    tags: list[TagOut]
    counts: dict[str, int] = Field(description="open findings (vulnerabilities and secrets) by severity")
    critical_with_fix: int
    secrets: int
    first_seen: str
    last_scanned_at: str


class ImagePage(BaseModel):
    items: list[ImageOut]
    total: int
    limit: int
    offset: int


class ImageFindingOut(BaseModel):
    id: int
    fingerprint: str
    kind: str = Field(description="vulnerability or secret")
    rule_id: str = Field(description="the advisory id or the secret rule")
    severity: str
    package: str
    installed: str
    fixed_version: str
    has_fix: bool
    status: str = Field(description="open, or fixed (gone since fixed_at)")
    first_seen: str
    last_seen: str
    fixed_at: str
    finding: dict[str, Any] = Field(description="the finding as `garrison scan -f json` renders it")


class ImageFindingPage(BaseModel):
    items: list[ImageFindingOut]
    total: int
    limit: int
    offset: int


class RescanIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    force: bool = Field(default=False, description="rescan even when the advisory database is unchanged")


class RescanQueuedOut(BaseModel):
    job_id: str = Field(description="the queued rescan job (one waiting at most: asking again returns it)")
    force: bool


class RescanOut(_Out):
    id: int
    db_identity: str = Field(description="the advisory database matched against (schema, build, sources)")
    forced: bool
    started_at: str
    finished_at: str = Field(description='"" while running, or when cut short (the next run resumes)')
    images: int
    aged_out: int = Field(description="images skipped: neither pushed, pulled nor scanned for rescan_max_age_days")
    appeared: int
    fixed: int


class RescanPage(BaseModel):
    items: list[RescanOut]
    total: int
    limit: int
    offset: int


def _image(r: reg.ImageRecord) -> ImageOut:
    repos = sorted({f"{t.registry}/{t.repository}" for t in r.tags})
    return ImageOut(
        digest=r.digest,
        config_digest=r.config_digest,
        architecture=r.architecture,
        os=r.os,
        packages=r.packages,
        repositories=repos,
        tags=[TagOut.model_validate(t) for t in r.tags],
        counts=r.counts,
        critical_with_fix=r.critical_with_fix,
        secrets=r.secrets,
        first_seen=r.first_seen,
        last_scanned_at=r.last_scanned_at,
    )


def _finding(f: reg.StoredImageFinding) -> ImageFindingOut:
    doc = dict(f.document)
    doc["first_seen"], doc["last_seen"] = f.first_seen, f.last_seen
    return ImageFindingOut(
        id=f.id,
        fingerprint=f.fingerprint,
        kind=f.kind,
        rule_id=f.rule_id,
        severity=f.severity,
        package=f.package,
        installed=f.installed,
        fixed_version=f.fixed_version,
        has_fix=f.has_fix,
        status=f.status,
        first_seen=f.first_seen,
        last_seen=f.last_seen,
        fixed_at=f.fixed_at,
        finding=doc,
    )


# --- routes -------------------------------------------------------------------------------------------

registries = APIRouter(prefix="/registries", tags=["registries"])
scans = APIRouter(prefix="/scans", tags=["scans"])
images = APIRouter(prefix="/images", tags=["images"])
rescans = APIRouter(prefix="/rescans", tags=["rescans"])


@registries.get("", response_model=RegistryPage, summary="configured registries")
def list_registries(store: StoreDep, _: Reader, limit: Limit = 100, offset: Offset = 0) -> RegistryPage:
    page = reg.list_registries(store, limit, offset)
    return RegistryPage(
        items=[RegistryOut.model_validate(r) for r in page.items], total=page.total, limit=limit, offset=offset
    )


@registries.post("", response_model=NewRegistryOut, status_code=201, summary="add a registry (admin)")
def create_registry(store: StoreDep, settings: SettingsDep, who: Admin, body: RegistryIn) -> NewRegistryOut:
    rec, tok = reg.create_registry(
        store,
        settings,
        who,
        body.name,
        body.url,
        username=body.username,
        password=body.password,
        token=body.token,
        scan_on_push=body.scan_on_push,
    )
    token = NewTokenOut(token=TokenOut.model_validate(tok.token), secret=tok.secret)
    return NewRegistryOut(registry=RegistryOut.model_validate(rec), notification_token=token)


@registries.get("/{registry_id}", response_model=RegistryOut, summary="one registry")
def get_registry(store: StoreDep, _: Reader, registry_id: int) -> RegistryOut:
    return RegistryOut.model_validate(reg.get_registry(store, registry_id))


@registries.patch("/{registry_id}", response_model=RegistryOut, summary="change a registry (admin)")
def update_registry(
    store: StoreDep, settings: SettingsDep, who: Admin, registry_id: int, body: RegistryPatch
) -> RegistryOut:
    rec = reg.update_registry(
        store,
        settings,
        who,
        registry_id,
        url=body.url,
        username=body.username,
        password=body.password,
        token=body.token,
        clear_credentials=body.clear_credentials,
        scan_on_push=body.scan_on_push,
    )
    return RegistryOut.model_validate(rec)


@registries.delete("/{registry_id}", response_model=RegistryOut, summary="forget a registry (admin)")
def delete_registry(store: StoreDep, who: Admin, registry_id: int) -> RegistryOut:
    return RegistryOut.model_validate(reg.delete_registry(store, who, registry_id))


@registries.post(
    "/{registry_id}/notifications",
    response_model=NotificationOut,
    summary="the registry's notification webhook (distribution's event envelope)",
    openapi_extra={"requestBody": {"required": True, "content": {reg.ENVELOPE_TYPE: {"schema": {"type": "object"}}}}},
)
async def notifications(
    request: Request, store: StoreDep, queue: QueueDep, who: Notifier, registry_id: int
) -> NotificationOut:
    ctype = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if ctype not in (reg.ENVELOPE_TYPE, "application/json"):
        raise HTTPException(415, f"notifications are {reg.ENVELOPE_TYPE}")
    body = await request.body()  # bounded by the app's body limit
    r = await run_in_threadpool(reg.handle_notifications, store, queue, who, registry_id, body)
    return NotificationOut(
        events=r.events, queued=list(r.queued), duplicates=r.duplicates, pulls=r.pulls, ignored=r.ignored
    )


@scans.post("", response_model=ScanOut, status_code=202, summary="request a scan of an image reference")
def request_scan(store: StoreDep, queue: QueueDep, settings: SettingsDep, who: Scanner, body: ScanIn) -> ScanOut:
    rec = reg.request_scan(
        store,
        queue,
        who.user.name,
        body.reference,
        registry_id=body.registry_id,
        settings=settings,
        principal=who,
    )
    return ScanOut.model_validate(rec)


@scans.get("", response_model=ScanPage, summary="scan requests, newest first")
def list_scans(
    store: StoreDep,
    _: Reader,
    status: Annotated[str, Query(max_length=16, description="queued, running, done or failed")] = "",
    digest: Annotated[str, Query(max_length=160)] = "",
    limit: Limit = 100,
    offset: Offset = 0,
) -> ScanPage:
    page = reg.list_scans(store, status, digest, limit, offset)
    return ScanPage(items=[ScanOut.model_validate(s) for s in page.items], total=page.total, limit=limit, offset=offset)


@scans.get("/{scan_id}", response_model=ScanOut, summary="one scan and its status")
def get_scan(store: StoreDep, _: Reader, scan_id: int) -> ScanOut:
    return ScanOut.model_validate(reg.get_scan(store, scan_id))


@images.get("", response_model=ImagePage, summary="scanned images with their tags and finding counts")
def list_images(
    store: StoreDep,
    _: Reader,
    registry: Annotated[str, Query(max_length=256, description="registry host[:port]")] = "",
    repository: Annotated[str, Query(max_length=256)] = "",
    severity: Annotated[str, Query(max_length=16, description="only images with an open finding of it")] = "",
    limit: Limit = 100,
    offset: Offset = 0,
) -> ImagePage:
    page = reg.list_images(store, registry, repository, severity, limit, offset)
    return ImagePage(items=[_image(r) for r in page.items], total=page.total, limit=limit, offset=offset)


@images.get("/{digest}", response_model=ImageOut, summary="one image by manifest digest")
def get_image(store: StoreDep, _: Reader, digest: str) -> ImageOut:
    return _image(reg.get_image(store, digest))


@images.get(
    "/{digest}/sbom",
    summary="an image's SBOM, from its last scan (CycloneDX 1.6, SPDX 2.3 or garrison's inventory)",
    response_class=JSONResponse,
    responses={200: {"content": {t: {"schema": {"type": "object"}} for t in reg.SBOM_FORMATS.values()}}},
)
def image_sbom(
    store: StoreDep,
    _: Reader,
    digest: str,
    format: Annotated[str, Query(max_length=16, description="cyclonedx (default), spdx or garrison")] = "cyclonedx",
) -> Response:
    doc = reg.image_sbom(store, digest, format)
    return JSONResponse(doc, media_type=reg.SBOM_FORMATS[format])


@images.get("/{digest}/findings", response_model=ImageFindingPage, summary="an image's vulnerabilities and secrets")
def image_findings(
    store: StoreDep,
    _: Reader,
    digest: str,
    kind: Annotated[str, Query(max_length=16, description="vulnerability or secret")] = "",
    severity: Annotated[str, Query(max_length=16)] = "",
    status: Annotated[str, Query(max_length=8, description='open (default), fixed, or "all"')] = "open",
    fixed: Annotated[bool | None, Query(description="true: only with a fix; false: only without")] = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> ImageFindingPage:
    page = reg.image_findings(
        store,
        digest,
        kind=kind,
        severity=severity,
        limit=limit,
        offset=offset,
        status="" if status == "all" else status,
        has_fix=fixed,
    )
    return ImageFindingPage(items=[_finding(f) for f in page.items], total=page.total, limit=limit, offset=offset)


@rescans.post("", response_model=RescanQueuedOut, status_code=202, summary="queue a rescan of the stored SBOMs")
def request_rescan(store: StoreDep, queue: QueueDep, who: Scanner, body: RescanIn | None = None) -> RescanQueuedOut:
    force = bool(body and body.force)
    return RescanQueuedOut(job_id=reg.request_rescan(store, queue, who.user.name, force=force), force=force)


@rescans.get("", response_model=RescanPage, summary="rescan runs, newest first")
def list_rescans(store: StoreDep, _: Reader, limit: Limit = 100, offset: Offset = 0) -> RescanPage:
    page = reg.list_rescans(store, limit, offset)
    return RescanPage(
        items=[RescanOut.model_validate(r) for r in page.items], total=page.total, limit=limit, offset=offset
    )


ROUTERS: list[APIRouter] = [registries, scans, images, rescans]
