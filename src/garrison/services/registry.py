"""Registry continuous assessment: registries with sealed credentials, scan on push, scan requests, the
scan job (one pull, digest-verified; SBOM, vulnerabilities, secrets and tags stored per digest), and
rescans of the stored SBOMs when the advisory database changes (no registry traffic).

The routers, the Harbor adapter, admission and the job handlers call these functions; each change is
one transaction with its audit-log entry. Nothing here logs a credential: registry credentials and
``Authorization`` headers are sealed with :mod:`garrison.services.secretbox` the moment they arrive and
unsealed only inside the scan job that pulls with them.

The engines (sources, inventory, matching, the report renderers) are imported inside the functions
that run them: every API process imports this module for its routes, and only the processes that run
scan and rescan jobs need the scanners (the job table loads handlers the same way, see
:mod:`garrison.jobs.tasks`).
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import re
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from garrison.errors import GarrisonError, InputError, UsageError
from garrison.services import secretbox
from garrison.services.server import CLI_ACTOR, Forbidden, NewToken, NotFound, Principal, Refused, forget_tokens
from garrison.store.images import (
    SEVERITIES,
    FindingFilter,
    FindingIn,
    ImageFilter,
    ImageIn,
    ImageRecord,
    RegistryRecord,
    RescanRecord,
    ScanRecord,
    StoredImageFinding,
    TagRecord,
)
from garrison.store.records import Page, Role, iso_of, now_iso
from garrison.store.repos import Conflict, Repositories, Store

if TYPE_CHECKING:
    from garrison.config import Settings
    from garrison.jobs import JobContext, Queue
    from garrison.model import Inventory
    from garrison.model.common import Finding
    from garrison.report.model import ScanReport
    from garrison.services.scan import ScanService
    from garrison.services.settings import ServerSettings
    from garrison.vulndb.store import AdvisoryDB

__all__ = [
    "ImageRecord",
    "ImageVerdict",
    "NotificationResult",
    "RegistryRecord",
    "RescanResult",
    "ScanRecord",
    "StoredImageFinding",
    "create_registry",
    "database_identity",
    "delete_registry",
    "get_image",
    "get_registry",
    "get_scan",
    "handle_notifications",
    "image_findings",
    "image_verdict",
    "list_images",
    "list_registries",
    "list_rescans",
    "list_scans",
    "request_rescan",
    "request_scan",
    "rescan_if_changed",
    "run_rescan_job",
    "run_scan_job",
    "update_registry",
]

log = logging.getLogger("garrison.registry")

#: The job names (see :data:`garrison.jobs.tasks.TASKS`).
SCAN_TASK = "scan_image"
RESCAN_TASK = "rescan_all"
#: The actor of what jobs change (the audit log's ``actor``).
JOB_ACTOR = "garrison-jobs"
#: A digest pushed again within this many seconds of a scan request of it is not scanned again
#: (distribution re-sends an envelope it thinks failed; CI pipelines push one digest under many tags).
BURST_SECONDS = 300
#: Manifest media types whose push is an image to scan (blobs and other artifacts are not).
MANIFEST_TYPES = frozenset(
    {
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
    }
)
#: distribution's notification envelope.
ENVELOPE_TYPE = "application/vnd.docker.distribution.events.v1+json"
MAX_EVENTS = 1000
_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
_URL = re.compile(r"^(https?)://([A-Za-z0-9.-]+|\[[0-9a-fA-F:]+\])(:[0-9]{1,5})?/?$")
MAX_REFERENCE = 1024
#: SBOMs a rescan reads per transaction (each image's results are still committed on their own).
RESCAN_BATCH = 50
MAX_SECRET = 4096


# --- records the API hands out ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ImageVerdict:
    """What admission needs about an image: its latest stored scan."""

    digest: str
    scanned_at: str
    critical: int
    high: int
    critical_with_fix: int
    secrets: int


@dataclass(frozen=True, slots=True)
class NotificationResult:
    """What one notification envelope did."""

    events: int
    #: Scans queued for pushed manifests.
    queued: tuple[int, ...]
    #: Pushed manifests not scanned again (already queued, running or scanned within the burst window).
    duplicates: int
    pulls: int
    ignored: int


@dataclass(frozen=True, slots=True)
class RescanResult:
    db_identity: str
    skipped: bool
    images: int
    aged_out: int
    appeared: int
    fixed: int


# --- small helpers ------------------------------------------------------------------------------------


def _page(items: Iterable[Any], total: int, limit: int, offset: int) -> Page[Any]:
    return Page(tuple(items), total, limit, offset)


def _bounds(limit: int, offset: int) -> None:
    if not 1 <= limit <= 1000 or offset < 0:
        raise InputError("limit: 1 to 1000; offset: 0 or more")


def _severity(text: str) -> str:
    s = text.strip().upper()
    if s and s not in SEVERITIES:
        raise InputError(f"severity {text!r}: one of {', '.join(SEVERITIES)}")
    return s


def _registry_ref(reference: str) -> Any:
    from garrison.sources.reference import parse_registry_ref

    if not reference.strip() or len(reference) > MAX_REFERENCE or any(not c.isprintable() for c in reference):
        raise InputError(f"reference: 1 to {MAX_REFERENCE} printable characters")
    try:
        return parse_registry_ref(reference)
    except UsageError as e:
        raise InputError(str(e)) from None


def _ago(days: float = 0, seconds: float = 0) -> str:
    return iso_of(datetime.now(UTC) - timedelta(days=days, seconds=seconds))


# --- registries ---------------------------------------------------------------------------------------


def _credentials_doc(username: str, password: str, token: str) -> str:
    """The JSON that gets sealed ("" for none). Username and password go together; a token alone."""
    for what, value in (("username", username), ("password", password), ("token", token)):
        if len(value) > MAX_SECRET or any(c in value for c in "\r\n\0"):
            raise InputError(f"{what}: at most {MAX_SECRET} characters, no line breaks")
    if token and (username or password):
        raise InputError("give username and password, or a token, not both")
    if bool(username) != bool(password):
        raise InputError("username and password go together")
    if token:
        return json.dumps({"token": token})
    if username:
        return json.dumps({"username": username, "password": password})
    return ""


def _parse_url(url: str) -> tuple[str, str]:
    """``https://host[:port]`` → (normalized url, host[:port])."""
    m = _URL.match(url.strip())
    if not m:
        raise InputError("url: http(s)://HOST[:PORT] of the registry (no path)")
    scheme, host, port = m.group(1), m.group(2).lower(), m.group(3) or ""
    return f"{scheme}://{host}{port}", f"{host}{port}"


def create_registry(
    store: Store,
    settings: ServerSettings,
    who: Principal | None,
    name: str,
    url: str,
    *,
    username: str = "",
    password: str = "",
    token: str = "",
    scan_on_push: bool = True,
) -> tuple[RegistryRecord, NewToken]:
    """A registry, its sealed credentials and its notification identity: an ``agent`` user
    ``registry-NAME`` scoped to ``registry:NAME`` whose token (returned this once) the registry sends in
    its notifications' ``Authorization: Bearer`` header."""
    from garrison.services import server as svc

    if not _NAME.match(name):
        raise InputError("name: 1 to 64 of a-z 0-9 . _ - (starting with a letter or digit)")
    full_url, host = _parse_url(url)
    creds = _credentials_doc(username, password, token)
    sealed = secretbox.seal(settings, creds) if creds else ""
    at = now_iso()
    actor = who.user.name if who else CLI_ACTOR
    with store.transaction() as tx:
        if tx.images.registry_by_name(name) is not None:
            raise Refused(f"a registry named {name!r} exists")
        rid = tx.images.add_registry(name, full_url, host, sealed, scan_on_push, at)
        agent_name, scope = f"registry-{name}", f"registry:{name}"
        old = tx.users.by_name(agent_name)
        if old is not None and old.disabled and old.role is Role.AGENT and old.cluster == scope:
            # The identity of a deleted registry of this name (users stay for the audit log): enabled
            # again; its old tokens were revoked with the registry, a new one is issued below.
            reused = tx.users.set_disabled(old.id, False)
            assert reused is not None
            agent = reused
            tx.audit.append(at, actor, "user.enable", "user", str(agent.id), "registry re-created")
        else:
            try:
                agent = tx.users.add(agent_name, Role.AGENT, at, scope)
            except Conflict as e:
                raise Refused(str(e)) from None
            tx.audit.append(at, actor, "user.create", "user", str(agent.id), "", {"name": agent.name, "role": "agent"})
        tx.images.set_registry_agent(rid, agent.id)
        new = svc.issue_token(tx, agent, "notifications", None, at)
        detail = {"name": name, "url": full_url, "has_credentials": bool(creds), "scan_on_push": scan_on_push}
        tx.audit.append(at, actor, "registry.create", "registry", str(rid), "", detail)
        tx.audit.append(at, actor, "token.create", "token", str(new.token.id), "", {"user": agent.name})
        rec = tx.images.get_registry(rid)
        assert rec is not None
        return rec, new


def get_registry(store: Store, registry_id: int) -> RegistryRecord:
    with store.transaction(readonly=True) as tx:
        rec = tx.images.get_registry(registry_id)
    if rec is None:
        raise NotFound(f"no registry {registry_id}")
    return rec


def list_registries(store: Store, limit: int = 100, offset: int = 0) -> Page[RegistryRecord]:
    _bounds(limit, offset)
    with store.transaction(readonly=True) as tx:
        p = tx.images.list_registries(limit, offset)
    return _page(p.items, p.total, limit, offset)


def update_registry(
    store: Store,
    settings: ServerSettings,
    who: Principal | None,
    registry_id: int,
    *,
    url: str | None = None,
    username: str | None = None,
    password: str | None = None,
    token: str | None = None,
    clear_credentials: bool = False,
    scan_on_push: bool | None = None,
) -> RegistryRecord:
    """Change the URL, the credentials (new ones replace the old; ``clear_credentials`` drops them) or
    scan on push. The audit log says what changed, never to what secret."""
    values: dict[str, Any] = {}
    changed: list[str] = []
    if url is not None:
        values["url"], values["host"] = _parse_url(url)
        changed.append("url")
    if any(v is not None for v in (username, password, token)):
        if clear_credentials:
            raise InputError("give new credentials or clear them, not both")
        creds = _credentials_doc(username or "", password or "", token or "")
        if not creds:
            raise InputError("empty credentials: use clear_credentials to drop them")
        values["credentials"] = secretbox.seal(settings, creds)
        changed.append("credentials")
    elif clear_credentials:
        values["credentials"] = ""
        changed.append("credentials")
    if scan_on_push is not None:
        values["scan_on_push"] = scan_on_push
        changed.append("scan_on_push")
    at = now_iso()
    with store.transaction() as tx:
        if tx.images.get_registry(registry_id) is None:
            raise NotFound(f"no registry {registry_id}")
        rec = tx.images.update_registry(registry_id, values, at)
        assert rec is not None
        actor = who.user.name if who else CLI_ACTOR
        tx.audit.append(at, actor, "registry.update", "registry", str(registry_id), "", {"changed": changed})
        return rec


def delete_registry(store: Store, who: Principal | None, registry_id: int) -> RegistryRecord:
    """Forget a registry and its credentials; its notification user is disabled (its token stops
    working). Images, tags and findings stay (they are about digests, not the registry record)."""
    at = now_iso()
    with store.transaction() as tx:
        rec = tx.images.get_registry(registry_id)
        if rec is None:
            raise NotFound(f"no registry {registry_id}")
        tx.images.delete_registry(registry_id)
        actor = who.user.name if who else CLI_ACTOR
        if rec.agent_user_id is not None:
            tx.users.set_disabled(rec.agent_user_id, True)
            tx.audit.append(at, actor, "user.disable", "user", str(rec.agent_user_id), "registry deleted")
            tokens = tx.tokens.list(rec.agent_user_id, 1000, 0).items
            for tok in tokens:
                if not tok.revoked_at:
                    tx.tokens.revoke(tok.id, at)
                    tx.audit.append(at, actor, "token.revoke", "token", str(tok.id), "registry deleted")
        tx.audit.append(at, actor, "registry.delete", "registry", str(registry_id), "", {"name": rec.name})
    forget_tokens(store)
    return rec


def _check_scope(tx: Repositories, who: Principal | None, registry: RegistryRecord | None) -> None:
    """An agent acts for its own registry only (people act for any)."""
    if who is None or who.role is not Role.AGENT:
        return
    if registry is None or registry.agent_user_id != who.user.id:
        raise Forbidden("this token acts for its own registry only")


# --- scans --------------------------------------------------------------------------------------------


def request_scan(
    store: Store,
    queue: Queue,
    who: str,
    reference: str,
    *,
    registry_id: int | None = None,
    authorization: str | None = None,
    source: str = "api",
    settings: ServerSettings | None = None,
    principal: Principal | None = None,
) -> ScanRecord:
    """Record a scan of ``reference`` (``host/repo:tag`` or ``host/repo@sha256:…``) as queued and enqueue
    its job (locked per image, so one image is never scanned twice at once).

    ``authorization``: a registry ``Authorization`` header value to pull with (``Basic …`` or
    ``Bearer …``, as Harbor sends); it is stored only sealed, which needs ``settings`` (the server key).
    ``principal``: the caller, when an agent's scope must be checked (an agent scans its registry only).
    """
    ref = _registry_ref(reference)
    sealed = ""
    if authorization:
        if len(authorization) > MAX_SECRET or any(c in authorization for c in "\r\n\0"):
            raise InputError(f"authorization: at most {MAX_SECRET} characters, no line breaks")
        if settings is None:
            raise UsageError("request_scan: an authorization is sealed with the server key: pass settings")
        sealed = secretbox.seal(settings, authorization)
    at = now_iso()
    with store.transaction() as tx:
        registry = None
        if registry_id is not None:
            registry = tx.images.get_registry(registry_id)
            if registry is None:
                raise NotFound(f"no registry {registry_id}")
            if registry.host != ref.host.lower():
                raise InputError(f"{reference}: not an image of registry {registry.name} ({registry.host})")
        else:
            registry = tx.images.registry_for_host(ref.host)
        _check_scope(tx, principal, registry)
        scan = tx.images.add_scan(str(ref), registry.id if registry else None, ref.digest, who, source[:32], sealed, at)
        tx.audit.append(at, who, "scan.request", "scan", str(scan.id), "", {"reference": str(ref), "source": source})
    return _enqueue(store, queue, scan)


def _lock(scan: ScanRecord) -> str:
    return f"image:{scan.digest or scan.reference}"


def _enqueue(store: Store, queue: Queue, scan: ScanRecord) -> ScanRecord:
    """Enqueue the scan's job after its row is committed (the job must find it); a queue that refuses
    fails the scan with the reason instead of leaving it queued for ever."""
    try:
        job_id = queue.enqueue(SCAN_TASK, {"scan_id": scan.id}, lock=_lock(scan))
    except Exception as e:
        with store.transaction() as tx:
            tx.images.finish_scan(scan.id, "failed", "", f"could not queue the scan: {type(e).__name__}", {}, now_iso())
        raise
    with store.transaction() as tx:
        tx.images.set_scan_job(scan.id, str(job_id))
        rec = tx.images.get_scan(scan.id)
    assert rec is not None
    return rec


def get_scan(store: Store, scan_id: int) -> ScanRecord:
    with store.transaction(readonly=True) as tx:
        rec = tx.images.get_scan(scan_id)
    if rec is None:
        raise NotFound(f"no scan {scan_id}")
    return rec


def list_scans(store: Store, status: str = "", digest: str = "", limit: int = 100, offset: int = 0) -> Page[ScanRecord]:
    from garrison.store.images import SCAN_STATUSES

    _bounds(limit, offset)
    if status and status not in SCAN_STATUSES:
        raise InputError(f"status {status!r}: one of {', '.join(SCAN_STATUSES)}")
    with store.transaction(readonly=True) as tx:
        p = tx.images.list_scans(status, digest, limit, offset)
    return _page(p.items, p.total, limit, offset)


# --- scan on push -------------------------------------------------------------------------------------


def _events(body: bytes) -> list[dict[str, Any]]:
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise InputError("the body is not JSON (a distribution notification envelope)") from None
    events = doc.get("events") if isinstance(doc, dict) else None
    if not isinstance(events, list) or not all(isinstance(e, dict) for e in events):
        raise InputError('not a notification envelope: {"events": [...]} expected')
    if len(events) > MAX_EVENTS:
        raise InputError(f"at most {MAX_EVENTS} events per envelope")
    return events


def _target(event: Mapping[str, Any]) -> tuple[str, str, str, str] | None:
    """(media type, repository, tag, digest) of an event's target, None when malformed."""
    from garrison.sources.reference import parse_registry_ref

    t = event.get("target")
    if not isinstance(t, dict):
        return None
    media, repo, tag, digest = (str(t.get(k) or "") for k in ("mediaType", "repository", "tag", "digest"))
    try:
        ref = parse_registry_ref(
            f"garrison.invalid/{repo}" + (f":{tag}" if tag else "") + (f"@{digest}" if digest else "")
        )
    except UsageError:
        return None
    if not repo or (digest and ref.digest != digest.lower()):
        return None
    return media, ref.repository, tag, ref.digest


def handle_notifications(
    store: Store, queue: Queue, who: Principal, registry_id: int, body: bytes
) -> NotificationResult:
    """distribution's notification envelope: each ``push`` of a manifest queues one scan of
    ``repository@digest`` (unless that digest is already queued or running, or was requested within
    :data:`BURST_SECONDS`); ``pull`` events of manifests update the tags' last pulled; blob events and
    other actions are ignored. Only the registry's own agent token (or an admin) may post here."""
    events = _events(body)
    at = now_iso()
    burst = _ago(seconds=BURST_SECONDS)
    to_queue: list[ScanRecord] = []
    duplicates = pulls = ignored = 0
    with store.transaction() as tx:
        registry = tx.images.get_registry(registry_id)
        if registry is None:
            raise NotFound(f"no registry {registry_id}")
        if who.role is not Role.ADMIN:
            _check_scope(tx, who, registry)
        seen: set[str] = set()
        for ev in events:
            target = _target(ev)
            action = str(ev.get("action") or "")
            if target is None or target[0] not in MANIFEST_TYPES or not target[3]:
                ignored += 1
                continue
            _, repo, tag, digest = target
            if action == "pull":
                pulls += 1
                tx.images.see_pull(registry.host, repo, tag, digest, at)
                continue
            if action != "push":
                ignored += 1
                continue
            tx.images.see_tag(registry.host, repo, tag, digest, at, pushed=True)
            if not registry.scan_on_push:
                ignored += 1
                continue
            if digest in seen:
                duplicates += 1
                continue
            seen.add(digest)
            pending = tx.images.pending_scan_of(digest, burst)
            if pending is not None:
                if pending.status == "queued" and not pending.job_id:
                    to_queue.append(pending)  # recorded but never queued (the server stopped in between)
                else:
                    duplicates += 1
                continue
            ref = f"{registry.host}/{repo}@{digest}"
            scan = tx.images.add_scan(ref, registry.id, digest, who.user.name, "push", "", at)
            to_queue.append(scan)
        if to_queue or pulls:
            detail = {"events": len(events), "queued": len(to_queue), "pulls": pulls, "duplicates": duplicates}
            tx.audit.append(at, who.user.name, "registry.notify", "registry", str(registry_id), "", detail)
    queued = tuple(_enqueue(store, queue, s).id for s in to_queue)
    return NotificationResult(len(events), queued, duplicates, pulls, ignored)


# --- the scan job -------------------------------------------------------------------------------------


_services: dict[tuple[str, int, int], ScanService] = {}
_services_lock = threading.Lock()


def _scan_service(settings: Settings) -> ScanService:
    """One :class:`ScanService` per advisory database file (by path, inode and modification time): a
    worker keeps the database open across jobs, and a database swapped in by ``db update`` is a new
    file, so the next job opens it."""
    from garrison.services.scan import ScanService

    path = settings.database_file
    try:
        st = path.stat()
        key = (str(path), st.st_ino, st.st_mtime_ns)
    except OSError:
        key = (str(path), 0, 0)
    with _services_lock:
        svc = _services.get(key)
        if svc is None:
            # Not closed here: a job still scanning with the old database keeps its service (and so the
            # old file, open) until it ends; the last reference going closes it.
            for old_key in [k for k in _services if k[0] == key[0]]:
                del _services[old_key]
            svc = _services[key] = ScanService(settings)
        return svc


def _base_settings(server: ServerSettings, **kw: Any) -> Settings:
    """The scan settings of the server's jobs: the layer cache in the server's data folder (each worker
    machine keeps its own), the advisory database of ``server.vulndb`` else the CLI's default one."""
    from garrison.config import Settings

    db = server.vulndb or Settings().database_file
    return Settings(cache_dir=Path(server.data_dir) / "cache", db_path=str(db), **kw)


def database_identity(db: AdvisoryDB) -> str:
    """What identifies an advisory database's content: its schema, build time and every source's
    digest. A rebuilt database (``db update`` that changed anything) gets a new identity."""
    st = db.status()
    parts = [str(st.schema_version), st.built_at, *sorted(f"{s.name}={s.sha256}" for s in st.sources)]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:32]


class _StaticAuth(httpx.BaseTransport):
    """An httpx transport that sends a given ``Authorization`` header to one registry host (a token
    configured for the registry, or the header Harbor handed over), unless the client set one itself."""

    def __init__(self, header: str, host: str, inner: httpx.BaseTransport) -> None:
        self.header = header
        self.host = host.lower()
        self.inner = inner

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.netloc.decode().lower() == self.host and "authorization" not in request.headers:
            request.headers["Authorization"] = self.header
        return self.inner.handle_request(request)

    def close(self) -> None:
        self.inner.close()


def _pull_settings(
    ctx: JobContext, scan: ScanRecord, registry: RegistryRecord | None, creds: str, authorization: str
) -> tuple[Settings, str]:
    """(scan settings, static Authorization header or "") for pulling ``scan.reference``."""
    kw: dict[str, Any] = {}
    if registry is not None and registry.insecure:
        kw["insecure_registries"] = (registry.host,)
    header = ""
    if authorization:
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() == "basic":
            try:
                user, sep, password = base64.b64decode(value.strip(), validate=True).decode().partition(":")
            except (ValueError, UnicodeDecodeError):
                raise InputError("the scan's Basic authorization is not base64 of user:password") from None
            if not sep:
                raise InputError("the scan's Basic authorization is not base64 of user:password")
            kw.update(username=user, password=password)
        else:
            header = authorization
    elif creds:
        doc = json.loads(creds)
        if "token" in doc:
            header = f"Bearer {doc['token']}"
        else:
            kw.update(username=doc["username"], password=doc["password"])
    return _base_settings(ctx.settings, **kw), header


_secret_analyzer: Any = None


def _inventory(reference: str, settings: Settings, header: str) -> Inventory:
    """Pull ``reference`` once through garrison's registry source (manifest and every blob digest-verified
    while streaming) and walk each layer once for packages and secrets."""
    global _secret_analyzer
    from garrison import net
    from garrison.inventory.registry import declared_analyzers
    from garrison.inventory.scan import scan_image
    from garrison.progress import NO_PROGRESS
    from garrison.secrets.analyzer import secret_analyzer
    from garrison.sources.reference import parse_registry_ref
    from garrison.sources.registry import RegistrySource

    if _secret_analyzer is None:
        _secret_analyzer = secret_analyzer(None)
    ref = parse_registry_ref(reference)
    transport = None
    if header:
        transport = _StaticAuth(header, ref.api_host, httpx.HTTPTransport(verify=net.ssl_context(settings)))
    source = RegistrySource(ref, settings, name=reference, transport=transport)
    with source.open() as opened:
        return scan_image(opened, (*declared_analyzers("image"), _secret_analyzer), settings, NO_PROGRESS)


def _revision(f: Finding[Any], *extra: str) -> str:
    """What changes a stored finding's document besides its times: the severity, the title (package,
    version, id), the rule's version (an advisory's ``modified``) and ``extra`` (fixes, KEV…)."""
    text = "\x1f".join((f.severity.name, f.title, f.rule.version, f.rule.title, *f.rule.aliases, *extra))
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


def _finding_in(f: Finding[Any], refs: dict[Any, str]) -> FindingIn:
    from garrison.model.vuln import Vulnerability
    from garrison.report.json_report import finding_document

    def render() -> dict[str, Any]:
        return finding_document(f, refs)

    if isinstance(f.detail, Vulnerability):
        v = f.detail
        fixed = ", ".join(v.fixed_versions)
        rev = _revision(f, fixed, str(v.kev), str(v.advisory.cvss_score), refs.get(v.package, ""), *v.merged_ids)
        return FindingIn(
            f.fingerprint, "vulnerability", v.vulnerability_id, f.severity.name, v.package.name,
            v.package.version, fixed, bool(v.fixed_versions), rev, render,
        )  # fmt: skip
    evidence = [str(x) for pair in f.evidence for x in pair]
    return FindingIn(
        f.fingerprint, "secret", f.rule.id, f.severity.name, "", "", "", False, _revision(f, *evidence), render
    )


def _findings_of(report: ScanReport) -> list[FindingIn]:
    from garrison.report.common import package_refs
    from garrison.report.json_report import sorted_packages

    refs = dict(package_refs(sorted_packages(report.inventory.packages)))
    return [_finding_in(f, refs) for f in report.findings]


def _notify(
    store: Store,
    queue: Queue | None,
    digest: str,
    tags: Sequence[TagRecord],
    new: Sequence[FindingIn],
    fixed: Sequence[StoredImageFinding] = (),
) -> None:
    """``image.findings.new`` for critical findings that appeared, ``image.findings.fixed`` for critical
    ones gone (one event each per image)."""
    from garrison.services import notify

    names = [t.name for t in tags][:10]
    where = names[0] if names else digest
    for event, items in (
        ("image.findings.new", [(f.kind, f.rule_id, f.package, f.installed, f.fixed_version, f.severity) for f in new]),
        (
            "image.findings.fixed",
            [(f.kind, f.rule_id, f.package, f.installed, f.fixed_version, f.severity) for f in fixed],
        ),
    ):
        critical = [x for x in items if x[5] == "CRITICAL"]
        if not critical:
            continue
        what = "new critical finding" if event.endswith(".new") else "critical finding fixed"
        title = f"{len(critical)} {what}{'s' * (len(critical) != 1)} in {where}".replace(
            "finding fixeds", "findings fixed"
        )
        data = {
            "severity": "CRITICAL",
            "digest": digest,
            "images": names,
            "count": len(critical),
            "findings": [
                {"kind": k, "id": rid, "package": pkg, "installed": inst, "fixed": fix}
                for k, rid, pkg, inst, fix, _ in critical[:50]
            ],
        }
        try:
            notify.publish(store, queue, event, title, data)
        except Exception as e:  # a notification problem must not undo stored results
            log.warning("could not publish %s for %s: %s", event, digest, type(e).__name__)


def _fail(store: Store, scan_id: int, message: str, *, final: bool) -> None:
    """Mark the scan failed; ``final`` (no retry will come) also drops its sealed authorization."""
    with store.transaction() as tx:
        tx.images.finish_scan(scan_id, "failed", "", message, {}, now_iso(), drop_authorization=final)
        tx.audit.append(now_iso(), JOB_ACTOR, "scan.fail", "scan", str(scan_id), message[:500])


def run_scan_job(ctx: JobContext, payload: dict[str, Any]) -> None:
    """The ``scan_image`` task: pull, inventory, match, and store everything in one transaction (so a job
    killed midway and run again leaves nothing doubled). Failures that another run cannot fix (no such
    image, refused credentials, a bad image) fail the scan with the reason; others are raised for the
    queue to retry."""
    from garrison.report.json_report import inventory_document
    from garrison.services.scan import Scanner, ScanRequest

    scan_id = int(payload["scan_id"])
    store = ctx.store
    with store.transaction() as tx:
        scan = tx.images.get_scan(scan_id)
        if scan is None or scan.status == "done":
            return  # deleted, or a re-run of a job that finished
        fresh = tx.images.done_scan_since(scan.digest, scan.created_at, scan_id) if scan.digest else None
        if fresh is not None:
            # Another request of the same digest (two notifications racing on PostgreSQL) was scanned
            # after this one was asked for: its results are this one's too, no second pull.
            at = now_iso()
            tx.images.finish_scan(scan_id, "done", scan.digest, "", fresh.counts, at)
            tx.audit.append(at, JOB_ACTOR, "scan.done", "scan", str(scan_id), "", {"same_as": fresh.id})
            return
        tx.images.start_scan(scan_id, now_iso())
        registry = tx.images.get_registry(scan.registry_id) if scan.registry_id is not None else None
        creds_sealed = tx.images.registry_credentials(registry.id) if registry else ""
        auth_sealed = tx.images.scan_authorization(scan_id)
    try:
        creds = secretbox.unseal(ctx.settings, creds_sealed) if creds_sealed else ""
        authorization = secretbox.unseal(ctx.settings, auth_sealed) if auth_sealed else ""
        settings, header = _pull_settings(ctx, scan, registry, creds, authorization)
        inv = _inventory(scan.reference, settings, header)
        svc = _scan_service(settings)
        report = svc.scan_inventory(inv, ScanRequest(scanners=frozenset({Scanner.VULN, Scanner.SECRET})))
        identity = database_identity(svc.database())
    except GarrisonError as e:
        _fail(store, scan_id, str(e), final=True)
        log.info("scan %d of %s failed: %s", scan_id, scan.reference, type(e).__name__)
        return
    except Exception as e:
        _fail(store, scan_id, f"internal error: {type(e).__name__}", final=False)
        raise
    art = inv.artifact
    digest = art.digest or scan.digest
    os_name = inv.os.pretty_name if inv.os else ""
    found = _findings_of(report)
    from garrison.sources.reference import parse_registry_ref

    ref = parse_registry_ref(scan.reference)
    host = registry.host if registry else ref.host
    at = now_iso()
    with store.transaction() as tx:
        tx.images.put_image(ImageIn(digest, art.config_digest, art.architecture, os_name, len(inv.packages)), at)
        tx.images.put_sbom(digest, inventory_document(inv, at), at)
        tx.images.see_tag(host, ref.repository, ref.tag if not ref.digest else "", digest, at, pushed=False)
        if ref.digest and ref.digest != digest:
            # An index: its tags now name the platform's image that was scanned (what admission looks up),
            # and so does its digest (a pod may name the index by digest: nginx@sha256:<index>).
            tx.images.put_index(ref.digest, digest, at)
            for t in tx.images.tags_of([ref.digest]).get(ref.digest, ()):
                if t.tag and t.registry == host and t.repository == ref.repository:
                    tx.images.see_tag(host, ref.repository, t.tag, digest, at, pushed=True)
        merged = tx.images.merge_findings(digest, found, ("vulnerability", "secret"), at)
        tx.images.refresh_counts(digest, identity, at)
        image = tx.images.get_image(digest)
        assert image is not None
        counts = {k: v for k, v in image.counts.items() if v}
        tx.images.finish_scan(scan_id, "done", digest, "", counts, at)
        detail = {
            "digest": digest,
            "findings": len(found),
            "appeared": len(merged.appeared),
            "fixed": len(merged.fixed),
        }
        tx.audit.append(at, JOB_ACTOR, "scan.done", "scan", str(scan_id), "", detail)
        tags = image.tags
    _notify(store, ctx.queue, digest, tags, merged.appeared, merged.fixed)


# --- rescans ------------------------------------------------------------------------------------------


def inventory_of_document(doc: Mapping[str, Any]) -> Inventory:
    """The :class:`~garrison.model.Inventory` back from its ``garrison.inventory/v1`` document (the
    stored SBOM): every field the matcher reads, so a rescan matches as the scan did."""
    from garrison.model import Artifact, Inventory, LayerInfo, OSInfo, Package, PackageType, SourceKind

    a = doc["artifact"]
    artifact = Artifact(
        name=a["name"],
        kind=SourceKind(a["kind"]),
        digest=a["digest"],
        config_digest=a["config_digest"],
        architecture=a["architecture"],
        os=a["os"],
        layers=tuple(LayerInfo(**layer) for layer in a.get("layers", ())),
        repo_tags=tuple(a.get("repo_tags", ())),
        repo_digests=tuple(a.get("repo_digests", ())),
        labels=dict(a.get("labels", {})),
    )
    o = doc.get("os")
    os_info = OSInfo(**o) if o else None
    packages = tuple(
        Package(
            name=p["name"],
            version=p["version"],
            type=PackageType(p["type"]),
            purl=p["purl"],
            locations=tuple(p["locations"]),
            layer=p["layer"],
            source_name=p["source_name"],
            source_version=p["source_version"],
            arch=p["arch"],
            licenses=tuple(p["licenses"]),
            epoch=p["epoch"],
            namespace=p["namespace"],
            from_lockfile=p["from_lockfile"],
        )
        for p in doc["packages"]
    )
    return Inventory(artifact=artifact, os=os_info, packages=packages, warnings=tuple(doc.get("warnings", ())))


def rescan_if_changed(ctx: JobContext) -> str | None:
    """Queue a rescan when some active image was matched against another advisory database than the
    current one (``db update`` and the periodic job call this); the job's id, or None when all are current."""
    since = _ago(days=ctx.settings.rescan_max_age_days)
    with ctx.store.transaction() as tx:
        active, _ = tx.images.rescan_candidates(since, "", True)
    if not active:
        return None
    svc = _scan_service(_base_settings(ctx.settings))
    identity = database_identity(svc.database())
    with ctx.store.transaction() as tx:
        todo, _ = tx.images.rescan_candidates(since, identity, False)
    if not todo:
        return None
    return ctx.queue.enqueue(RESCAN_TASK, {}, lock="rescan", queueing_lock=RESCAN_TASK)


def rescan(ctx: JobContext, *, force: bool = False) -> RescanResult:
    """Re-match every stored SBOM of an active image against the current advisory database (no registry
    traffic); findings that appeared are stored open, those gone are marked fixed. Skipped when every
    active image was already matched against this database, unless ``force``. One transaction per
    image, so an interrupted rescan resumes where it stopped."""
    from garrison.services.scan import Scanner, ScanRequest

    store = ctx.store
    since = _ago(days=ctx.settings.rescan_max_age_days)
    with store.transaction() as tx:
        active, aged = tx.images.rescan_candidates(since, "", True)
    if not active:  # nothing stored (or all aged out): no need to open an advisory database at all
        return RescanResult("", True, 0, aged, 0, 0)
    svc = _scan_service(_base_settings(ctx.settings))
    identity = database_identity(svc.database())
    with store.transaction() as tx:
        todo, aged = tx.images.rescan_candidates(since, identity, force)
    if not todo:
        return RescanResult(identity, True, 0, aged, 0, 0)
    with store.transaction() as tx:
        run_id = tx.images.add_rescan(identity, force, now_iso())
    request = ScanRequest(scanners=frozenset({Scanner.VULN}))
    appeared = fixed = done = 0
    for start in range(0, len(todo), RESCAN_BATCH):
        batch = todo[start : start + RESCAN_BATCH]
        with store.transaction() as tx:
            docs = {d: tx.images.sbom(d) for d in batch}
        for digest in batch:
            doc = docs[digest]
            if doc is None:
                continue
            report = svc.scan_inventory(inventory_of_document(doc), request)
            found = _findings_of(report)
            at = now_iso()
            with store.transaction() as tx:
                merged = tx.images.merge_findings(digest, found, ("vulnerability",), at, touch=False)
                tx.images.refresh_counts(digest, identity, at, recount=merged.changed > 0)
                critical = any(f.severity == "CRITICAL" for f in merged.appeared) or any(
                    f.severity == "CRITICAL" for f in merged.fixed
                )
                tags = tx.images.tags_of([digest]).get(digest, ()) if critical else ()
            done += 1
            appeared += len(merged.appeared)
            fixed += len(merged.fixed)
            if critical:
                _notify(store, ctx.queue, digest, tags, merged.appeared, merged.fixed)
    at = now_iso()
    with store.transaction() as tx:
        tx.images.finish_rescan(run_id, done, aged, appeared, fixed, at)
        detail = {"db_identity": identity, "images": done, "aged_out": aged, "appeared": appeared, "fixed": fixed}
        tx.audit.append(at, JOB_ACTOR, "rescan.done", "rescan", str(run_id), "", detail)
    log.info("rescan %d: %d images, %d findings appeared, %d fixed, %d aged out", run_id, done, appeared, fixed, aged)
    return RescanResult(identity, False, done, aged, appeared, fixed)


def request_rescan(store: Store, queue: Queue, who: str, *, force: bool = False) -> str:
    """Queue a rescan now (``POST /rescans``); the job's id. One waits at most: asking again while one
    waits returns that one."""
    at = now_iso()
    job_id = str(queue.enqueue(RESCAN_TASK, {"force": force}, lock="rescan", queueing_lock=RESCAN_TASK))
    with store.transaction() as tx:
        tx.audit.append(at, who, "rescan.request", "rescan", job_id, "", {"force": force})
    return job_id


def list_rescans(store: Store, limit: int = 100, offset: int = 0) -> Page[RescanRecord]:
    """Rescan runs, newest first (a run cut short has no ``finished_at``)."""
    _bounds(limit, offset)
    with store.transaction(readonly=True) as tx:
        p = tx.images.list_rescans(limit, offset)
    return _page(p.items, p.total, limit, offset)


def run_rescan_job(ctx: JobContext, payload: dict[str, Any]) -> None:
    """The ``rescan_all`` task (payload ``{"force": true}`` rescans even when the database is unchanged)."""
    rescan(ctx, force=bool(payload.get("force", False)))


# --- images and findings ------------------------------------------------------------------------------


def list_images(
    store: Store, registry: str = "", repository: str = "", severity: str = "", limit: int = 100, offset: int = 0
) -> Page[ImageRecord]:
    _bounds(limit, offset)
    f = ImageFilter(registry.strip().lower(), repository.strip(), _severity(severity))
    with store.transaction(readonly=True) as tx:
        p = tx.images.list_images(f, limit, offset)
    return _page(p.items, p.total, limit, offset)


def get_image(store: Store, digest: str) -> ImageRecord:
    with store.transaction(readonly=True) as tx:
        rec = tx.images.get_image(digest.strip().lower())
    if rec is None:
        raise NotFound(f"no image {digest[:80]}")
    return rec


#: The formats a scanned image's stored SBOM is exported in (``GET /api/v1/images/{digest}/sbom``,
#: Harbor's SBOM report): name → media type.
SBOM_FORMATS = {
    "cyclonedx": "application/vnd.cyclonedx+json",
    "spdx": "application/spdx+json",
    "garrison": "application/json",
}


def image_sbom(store: Store, digest: str, fmt: str = "cyclonedx") -> dict[str, Any]:
    """A scanned image's SBOM in ``fmt`` (CycloneDX 1.6, SPDX 2.3, or the ``garrison.inventory/v1``
    document as stored), made from what its last scan stored: no registry traffic, and the packages are
    the ones its findings and rescans are matched from. :class:`NotFound` when the image has none."""
    if fmt not in SBOM_FORMATS:
        raise InputError(f"SBOM format {fmt[:40]!r}: one of {', '.join(SBOM_FORMATS)}")
    digest = digest.strip().lower()
    with store.transaction(readonly=True) as tx:
        doc = tx.images.sbom(digest)
    if doc is None:
        raise NotFound(f"no SBOM of {digest[:80]}: the image was never scanned here")
    if fmt == "garrison":
        return doc
    inv = inventory_of_document(doc)
    at = str(doc.get("generated_at") or "")
    if fmt == "spdx":
        from garrison.report.spdx import spdx_document

        return spdx_document(inv, at)
    from garrison.report.cyclonedx import bom_document

    return bom_document(inv, at)


def image_findings(
    store: Store,
    digest: str,
    *,
    kind: str = "",
    severity: str = "",
    limit: int = 100,
    offset: int = 0,
    status: str = "open",
    has_fix: bool | None = None,
) -> Page[StoredImageFinding]:
    """An image's findings (open ones unless ``status`` says ``fixed`` or "" for both)."""
    _bounds(limit, offset)
    if kind not in ("", "vulnerability", "secret"):
        raise InputError("kind: vulnerability or secret")
    if status not in ("", "open", "fixed"):
        raise InputError("status: open or fixed")
    f = FindingFilter(kind, _severity(severity), status, has_fix)
    digest = digest.strip().lower()
    with store.transaction(readonly=True) as tx:
        if tx.images.get_image(digest) is None:
            raise NotFound(f"no image {digest[:80]}")
        p = tx.images.findings(digest, f, limit, offset)
    return _page(p.items, p.total, limit, offset)


def image_verdict(store: Store, image: str) -> ImageVerdict | None:
    """The stored verdict of ``image``: a digest (``sha256:…``), ``repo@sha256:…`` or a
    ``[registry/]repository:tag`` reference (Docker Hub rules for short names). None when never scanned."""
    return image_verdicts(store, [image])[image]


def image_verdicts(store: Store, images: Iterable[str]) -> dict[str, ImageVerdict | None]:
    """:func:`image_verdict` of each image, read in one transaction (an admission review asks for every
    container's image at once)."""
    from garrison.sources.reference import RegistryRef, parse_registry_ref

    wanted: dict[str, tuple[str, RegistryRef | None] | None] = {}
    for image in images:
        text = image.strip()
        if text.startswith(("sha256:", "sha512:")):
            wanted[image] = (text.lower(), None)
            continue
        try:
            ref = parse_registry_ref(text)
        except UsageError:
            wanted[image] = None  # not a reference: never scanned
            continue
        wanted[image] = (ref.digest, ref)
    out: dict[str, ImageVerdict | None] = {}
    with store.transaction(readonly=True) as tx:
        for image, what in wanted.items():
            rec = None
            if what is not None:
                digest, tagged = what
                if not digest and tagged is not None:
                    digest = tx.images.digest_of_tag(tagged.host.lower(), tagged.repository, tagged.tag) or ""
                rec = tx.images.get_image(digest, with_tags=False) if digest else None
                if rec is None and digest and (platform := tx.images.image_of_index(digest)):
                    rec = tx.images.get_image(platform, with_tags=False)  # an index: the image scanned for it
            out[image] = (
                None
                if rec is None
                else ImageVerdict(
                    rec.digest,
                    rec.last_scanned_at,
                    rec.counts["CRITICAL"],
                    rec.counts["HIGH"],
                    rec.critical_with_fix,
                    rec.secrets,
                )
            )
    return out
