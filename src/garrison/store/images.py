"""The store's images: registries (credentials sealed), images per manifest digest, their tags per
repository, SBOMs per digest, image findings (vulnerabilities and secrets, with status over time), scan
requests and rescan runs.

Tables (on :data:`garrison.store.tables.metadata`) and repository. Created by migration ``0002``.

Why these shapes:

* an image is its manifest digest; tags are where it was seen (``registry/repository:tag``), with first
  and last seen and the last push and pull (what ages an image out of rescans);
* an SBOM is garrison's inventory document (``garrison.inventory/v1``), enough to match again without
  the registry;
* a finding row keeps the finding's whole JSON document (as ``garrison scan -f json`` renders one) next
  to the columns the API filters on, keyed by (digest, fingerprint): a rescan updates the row, so a
  finding has one first-seen and, once gone, a ``fixed_at``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Connection,
    ForeignKey,
    Index,
    Integer,
    Select,
    String,
    Table,
    Text,
    UniqueConstraint,
    and_,
    case,
    delete,
    func,
    insert,
    or_,
    select,
    update,
)

from garrison.store.records import record_of
from garrison.store.tables import TIME, metadata

#: ``sha256:`` and 64 hex digits, with room for sha512.
DIGEST = 160
#: The severities an image's counts are kept for, highest first (the names of ``garrison.model.Severity``).
SEVERITIES = ("CRITICAL", "HIGH", "MEDIUM", "LOW", "NEGLIGIBLE", "UNKNOWN")
SCAN_STATUSES = ("queued", "running", "done", "failed")

registries = Table(
    "registries",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(128), nullable=False, unique=True),
    # scheme://host[:port]; http:// means plain HTTP is allowed for this host
    Column("url", String(512), nullable=False),
    # host[:port] as image references name it (what a reference is matched on)
    Column("host", String(256), nullable=False, index=True),
    # Fernet-sealed JSON {"username", "password"} or {"token"}; "" without credentials
    Column("credentials", Text, nullable=False, default=""),
    # the agent user whose token authenticates this registry's notifications
    Column("agent_user_id", Integer, ForeignKey("users.id"), nullable=True),
    Column("scan_on_push", Boolean, nullable=False, default=True),
    Column("created_at", String(TIME), nullable=False),
    Column("updated_at", String(TIME), nullable=False),
)

images = Table(
    "images",
    metadata,
    Column("digest", String(DIGEST), primary_key=True),
    Column("config_digest", String(DIGEST), nullable=False, default=""),
    Column("architecture", String(32), nullable=False, default=""),
    Column("os", String(256), nullable=False, default=""),
    Column("packages", Integer, nullable=False, default=0),
    # open findings by severity (both kinds), secrets, and critical vulnerabilities with a fix
    Column("critical", Integer, nullable=False, default=0),
    Column("high", Integer, nullable=False, default=0),
    Column("medium", Integer, nullable=False, default=0),
    Column("low", Integer, nullable=False, default=0),
    Column("negligible", Integer, nullable=False, default=0),
    Column("unknown", Integer, nullable=False, default=0),
    Column("critical_with_fix", Integer, nullable=False, default=0),
    Column("secrets", Integer, nullable=False, default=0),
    Column("first_seen", String(TIME), nullable=False),
    Column("last_scanned_at", String(TIME), nullable=False),
    # the advisory database the open vulnerabilities were matched against (see services.registry)
    Column("db_identity", String(64), nullable=False, default=""),
    Column("updated_at", String(TIME), nullable=False),
)

sboms = Table(
    "sboms",
    metadata,
    Column("digest", String(DIGEST), primary_key=True),
    Column("document", JSON, nullable=False),
    Column("created_at", String(TIME), nullable=False),
    Column("updated_at", String(TIME), nullable=False),
)

image_tags = Table(
    "image_tags",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    # the registry host[:port] as references name it
    Column("registry", String(256), nullable=False),
    Column("repository", String(256), nullable=False),
    # "" when seen by digest only
    Column("tag", String(128), nullable=False),
    Column("digest", String(DIGEST), nullable=False, index=True),
    Column("first_seen", String(TIME), nullable=False),
    Column("last_seen", String(TIME), nullable=False),
    Column("last_pushed", String(TIME), nullable=False, default=""),
    Column("last_pulled", String(TIME), nullable=False, default=""),
    UniqueConstraint("registry", "repository", "tag", "digest", name="uq_image_tags_ref"),
)

image_findings = Table(
    "image_findings",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("digest", String(DIGEST), nullable=False),
    Column("fingerprint", String(64), nullable=False),
    # vulnerability | secret
    Column("kind", String(16), nullable=False),
    # the advisory id (CVE-…, GHSA-…) or the secret rule id
    Column("rule_id", String(256), nullable=False, index=True),
    Column("severity", String(16), nullable=False),
    # the package name ("" for a secret) and its installed version
    Column("package", String(512), nullable=False),
    Column("installed", String(256), nullable=False),
    # the fixed versions, comma-separated ("" when there is no fix)
    Column("fixed_version", String(512), nullable=False),
    Column("has_fix", Boolean, nullable=False),
    # open | fixed
    Column("status", String(16), nullable=False),
    Column("first_seen", String(TIME), nullable=False),
    Column("last_seen", String(TIME), nullable=False),
    Column("fixed_at", String(TIME), nullable=False, default=""),
    # see FindingIn.revision
    Column("revision", String(32), nullable=False, default=""),
    # the finding as garrison's JSON renders it (findings/v2 envelope with its kind's block)
    Column("document", JSON, nullable=False),
    UniqueConstraint("digest", "fingerprint", name="uq_image_findings_digest"),
    Index("ix_image_findings_digest_status", "digest", "status"),
    Index("ix_image_findings_severity", "severity"),
)

scans = Table(
    "scans",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("reference", String(1024), nullable=False),
    Column("registry_id", Integer, nullable=True),
    # the manifest digest: the requested one (repo@digest) until the scan resolves it
    Column("digest", String(DIGEST), nullable=False, index=True),
    Column("status", String(16), nullable=False, index=True),
    Column("error", Text, nullable=False, default=""),
    Column("requested_by", String(128), nullable=False),
    # api | push | harbor | rescan
    Column("source", String(32), nullable=False),
    # a registry Authorization header value, Fernet-sealed ("" none)
    Column("authorization", Text, nullable=False, default=""),
    Column("job_id", String(64), nullable=False, default=""),
    Column("counts", JSON, nullable=False),
    Column("created_at", String(TIME), nullable=False),
    Column("started_at", String(TIME), nullable=False, default=""),
    Column("finished_at", String(TIME), nullable=False, default=""),
)

rescans = Table(
    "rescans",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("db_identity", String(64), nullable=False, index=True),
    Column("forced", Boolean, nullable=False),
    Column("started_at", String(TIME), nullable=False),
    Column("finished_at", String(TIME), nullable=False, default=""),
    Column("images", Integer, nullable=False, default=0),
    Column("aged_out", Integer, nullable=False, default=0),
    Column("appeared", Integer, nullable=False, default=0),
    Column("fixed", Integer, nullable=False, default=0),
)

#: A pushed (or referenced) image index and the platform image a scan of it resolved to and stored: a
#: pod naming the index's digest (``nginx@sha256:<index>``) gets that image's verdict.
image_indexes = Table(
    "image_indexes",
    metadata,
    Column("index_digest", String(DIGEST), primary_key=True),
    Column("digest", String(DIGEST), nullable=False, index=True),
    Column("seen_at", String(TIME), nullable=False),
)


# --- records ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RegistryRecord:
    """A configured registry. Its credentials stay sealed in the store: only whether it has some."""

    id: int
    name: str
    url: str
    host: str
    has_credentials: bool
    agent_user_id: int | None
    scan_on_push: bool
    created_at: str
    updated_at: str

    @property
    def insecure(self) -> bool:
        """Plain HTTP allowed (the URL says ``http://``)."""
        return self.url.startswith("http://")


@dataclass(frozen=True, slots=True)
class ScanRecord:
    """One scan request and how it went."""

    id: int
    reference: str
    registry_id: int | None
    #: The manifest digest (the requested one until the scan resolves it; "" for a tag not yet pulled).
    digest: str
    #: queued | running | done | failed
    status: str
    error: str
    requested_by: str
    #: api | push | harbor
    source: str
    created_at: str
    started_at: str
    finished_at: str
    #: Open findings by severity name once done.
    counts: dict[str, int] = field(default_factory=dict)
    job_id: str = ""


@dataclass(frozen=True, slots=True)
class TagRecord:
    registry: str
    repository: str
    tag: str
    digest: str
    first_seen: str
    last_seen: str
    last_pushed: str
    last_pulled: str

    @property
    def name(self) -> str:
        base = f"{self.registry}/{self.repository}"
        return f"{base}:{self.tag}" if self.tag else f"{base}@{self.digest}"


@dataclass(frozen=True, slots=True)
class ImageRecord:
    digest: str
    config_digest: str
    architecture: str
    os: str
    packages: int
    #: Open findings by severity name (vulnerabilities and secrets).
    counts: dict[str, int]
    critical_with_fix: int
    secrets: int
    first_seen: str
    last_scanned_at: str
    db_identity: str
    tags: tuple[TagRecord, ...] = ()


@dataclass(frozen=True, slots=True)
class StoredImageFinding:
    id: int
    digest: str
    fingerprint: str
    kind: str
    rule_id: str
    severity: str
    package: str
    installed: str
    fixed_version: str
    has_fix: bool
    status: str
    first_seen: str
    last_seen: str
    fixed_at: str
    #: The finding as ``garrison scan -f json`` renders it.
    document: dict[str, Any]


@dataclass(frozen=True, slots=True)
class FindingIn:
    """A finding of a scan, flattened for the store (see :func:`garrison.services.registry`)."""

    fingerprint: str
    kind: str
    rule_id: str
    severity: str
    package: str
    installed: str
    fixed_version: str
    has_fix: bool
    #: What tells two matches of one finding apart (severity, fixes, the advisory's version…): a finding
    #: whose revision is unchanged keeps its stored document, so a rescan renders only what changed.
    revision: str
    #: Renders the finding's JSON document (called only for new and changed findings).
    render: Callable[[], dict[str, Any]]


@dataclass(frozen=True, slots=True)
class ImageIn:
    digest: str
    config_digest: str
    architecture: str
    os: str
    packages: int


@dataclass(frozen=True, slots=True)
class Merged:
    """What folding a scan's findings into the stored ones changed."""

    appeared: tuple[FindingIn, ...]
    fixed: tuple[StoredImageFinding, ...]
    changed: int


@dataclass(frozen=True, slots=True)
class ImageFilter:
    registry: str = ""
    repository: str = ""
    #: Only images with at least one open finding of this severity.
    severity: str = ""


@dataclass(frozen=True, slots=True)
class FindingFilter:
    kind: str = ""
    severity: str = ""
    #: "open" (default), "fixed" or "" for both.
    status: str = "open"
    #: True: only with a fix; False: only without; None: both.
    has_fix: bool | None = None


@dataclass(frozen=True, slots=True)
class RescanRecord:
    id: int
    db_identity: str
    forced: bool
    started_at: str
    finished_at: str
    images: int
    aged_out: int
    appeared: int
    fixed: int


@dataclass(frozen=True, slots=True)
class PageOf:
    """A page (the same shape as :class:`garrison.store.records.Page`, which this module cannot import
    without a cycle: the caller wraps it)."""

    items: tuple[Any, ...]
    total: int


# --- the repository ------------------------------------------------------------------------------------


class ImageRepository(Protocol):
    # registries
    def add_registry(self, name: str, url: str, host: str, credentials: str, scan_on_push: bool, at: str) -> int: ...
    def set_registry_agent(self, registry_id: int, user_id: int) -> None: ...
    def get_registry(self, registry_id: int) -> RegistryRecord | None: ...
    def registry_by_name(self, name: str) -> RegistryRecord | None: ...
    def registry_for_host(self, host: str) -> RegistryRecord | None: ...
    def registry_credentials(self, registry_id: int) -> str:
        """The sealed credentials ("" none)."""
        ...

    def list_registries(self, limit: int, offset: int) -> PageOf: ...
    def update_registry(self, registry_id: int, values: Mapping[str, Any], at: str) -> RegistryRecord | None:
        """``values``: any of url, host, credentials (sealed), scan_on_push."""
        ...

    def delete_registry(self, registry_id: int) -> bool: ...

    # scans
    def add_scan(
        self,
        reference: str,
        registry_id: int | None,
        digest: str,
        requested_by: str,
        source: str,
        authorization: str,
        at: str,
    ) -> ScanRecord: ...
    def get_scan(self, scan_id: int) -> ScanRecord | None: ...
    def scan_authorization(self, scan_id: int) -> str: ...
    def set_scan_job(self, scan_id: int, job_id: str) -> None: ...
    def start_scan(self, scan_id: int, at: str) -> ScanRecord | None: ...
    def finish_scan(
        self,
        scan_id: int,
        status: str,
        digest: str,
        error: str,
        counts: dict[str, int],
        at: str,
        *,
        drop_authorization: bool = True,
    ) -> None:
        """Done or failed; the sealed authorization is dropped (it was for this pull only) unless a retry
        still needs it."""
        ...

    def list_scans(self, status: str, digest: str, limit: int, offset: int) -> PageOf: ...
    def pending_scan_of(self, digest: str, since: str) -> ScanRecord | None:
        """A scan of ``digest`` queued or running, or done and requested at or after ``since`` (the burst
        window; a failed one does not stop a new push from being scanned)."""
        ...

    def done_scan_since(self, digest: str, since: str, exclude: int) -> ScanRecord | None:
        """Another scan of ``digest`` that finished ``done`` at or after ``since``."""
        ...

    # images, tags, SBOMs, findings
    def put_image(self, image: ImageIn, at: str) -> None: ...
    def put_sbom(self, digest: str, document: dict[str, Any], at: str) -> None: ...
    def sbom(self, digest: str) -> dict[str, Any] | None: ...
    def see_tag(self, registry: str, repository: str, tag: str, digest: str, at: str, *, pushed: bool) -> None:
        """The tag (``""``: the repository by digest) now points at ``digest``; ``pushed`` also sets last pushed."""
        ...

    def see_pull(self, registry: str, repository: str, tag: str, digest: str, at: str) -> int:
        """Last pulled of the rows naming ``digest`` in the repository (and of the tag's row); rows changed."""
        ...

    def merge_findings(
        self, digest: str, found: Sequence[FindingIn], kinds: Iterable[str], at: str, *, touch: bool = True
    ) -> Merged:
        """Fold one scan's findings of ``kinds`` into the stored ones of ``digest``: new ones are inserted
        open, known ones updated (reopened when fixed), stored open ones the scan no longer has become
        fixed. ``touch``: set last seen of unchanged ones too (a full scan; a rescan only writes changes)."""
        ...

    def refresh_counts(self, digest: str, db_identity: str | None, at: str, *, recount: bool = True) -> None:
        """Recount the image's open findings (``recount`` False: they did not change) and record the
        database it was matched against."""
        ...

    def get_image(self, digest: str, *, with_tags: bool = True) -> ImageRecord | None:
        """The stored image (``with_tags=False``: its ``tags`` left empty, one query fewer — the
        admission webhook's verdict lookups need none)."""
        ...

    def list_images(self, f: ImageFilter, limit: int, offset: int) -> PageOf: ...
    def tags_of(self, digests: Sequence[str]) -> dict[str, tuple[TagRecord, ...]]: ...
    def put_index(self, index_digest: str, digest: str, at: str) -> None:
        """A scan of index ``index_digest`` resolved it to (and stored) the platform image ``digest``."""
        ...

    def image_of_index(self, index_digest: str) -> str | None:
        """The platform image a scan of the index stored, or None (not an index we scanned)."""
        ...

    def digest_of_tag(self, registry: str, repository: str, tag: str) -> str | None:
        """The digest the tag was last seen pointing at."""
        ...

    def findings(self, digest: str, f: FindingFilter, limit: int, offset: int) -> PageOf: ...
    def open_findings(self, digest: str, kind: str) -> list[StoredImageFinding]: ...
    def rescan_candidates(self, active_since: str, db_identity: str, force: bool) -> tuple[list[str], int]:
        """(digests to rescan, how many aged out): images with an SBOM pushed, pulled or scanned at or
        after ``active_since``, not yet matched against ``db_identity`` (every one when ``force``)."""
        ...

    # rescan runs
    def last_rescan(self) -> RescanRecord | None: ...
    def list_rescans(self, limit: int, offset: int) -> PageOf:
        """Newest first."""
        ...

    def add_rescan(self, db_identity: str, forced: bool, at: str) -> int: ...
    def finish_rescan(self, rescan_id: int, images: int, aged_out: int, appeared: int, fixed: int, at: str) -> None: ...


def _registry(r: Any) -> RegistryRecord:
    return RegistryRecord(
        id=r.id,
        name=r.name,
        url=r.url,
        host=r.host,
        has_credentials=bool(r.credentials),
        agent_user_id=r.agent_user_id,
        scan_on_push=bool(r.scan_on_push),
        created_at=r.created_at,
        updated_at=r.updated_at,
    )


def _scan(r: Any) -> ScanRecord:
    return record_of(ScanRecord, r, counts=lambda v: dict(v or {}))


def _tag(r: Any) -> TagRecord:
    return record_of(TagRecord, r)


def _counts(r: Any) -> dict[str, int]:
    return {s: int(getattr(r, s.lower())) for s in SEVERITIES}


def _image(r: Any, tags: tuple[TagRecord, ...] = ()) -> ImageRecord:
    return ImageRecord(
        digest=r.digest,
        config_digest=r.config_digest,
        architecture=r.architecture,
        os=r.os,
        packages=r.packages,
        counts=_counts(r),
        critical_with_fix=r.critical_with_fix,
        secrets=r.secrets,
        first_seen=r.first_seen,
        last_scanned_at=r.last_scanned_at,
        db_identity=r.db_identity,
        tags=tags,
    )


def _finding(r: Any, **override: Any) -> StoredImageFinding:
    f = StoredImageFinding(
        id=r.id,
        digest=r.digest,
        fingerprint=r.fingerprint,
        kind=r.kind,
        rule_id=r.rule_id,
        severity=r.severity,
        package=r.package,
        installed=r.installed,
        fixed_version=r.fixed_version,
        has_fix=bool(r.has_fix),
        status=r.status,
        first_seen=r.first_seen,
        last_seen=r.last_seen,
        fixed_at=r.fixed_at,
        document=dict(override.pop("document")) if "document" in override else dict(r.document),
    )
    return replace(f, **override) if override else f


def _rescan(r: Any) -> RescanRecord:
    return record_of(RescanRecord, r, forced=bool)


def _cut(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


class SqlImages:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def _page(self, q: Select[Any], order: Sequence[Any], limit: int, offset: int) -> tuple[list[Any], int]:
        total = self.conn.execute(select(func.count()).select_from(q.subquery())).scalar_one()
        return list(self.conn.execute(q.order_by(*order).limit(limit).offset(offset))), int(total)

    # -- registries --
    def add_registry(self, name: str, url: str, host: str, credentials: str, scan_on_push: bool, at: str) -> int:
        pk = self.conn.execute(
            insert(registries).values(
                name=name,
                url=url,
                host=host,
                credentials=credentials,
                agent_user_id=None,
                scan_on_push=scan_on_push,
                created_at=at,
                updated_at=at,
            )
        ).inserted_primary_key
        assert pk is not None
        return int(pk[0])

    def set_registry_agent(self, registry_id: int, user_id: int) -> None:
        self.conn.execute(update(registries).where(registries.c.id == registry_id).values(agent_user_id=user_id))

    def get_registry(self, registry_id: int) -> RegistryRecord | None:
        r = self.conn.execute(select(registries).where(registries.c.id == registry_id)).first()
        return None if r is None else _registry(r)

    def registry_by_name(self, name: str) -> RegistryRecord | None:
        r = self.conn.execute(select(registries).where(registries.c.name == name)).first()
        return None if r is None else _registry(r)

    def registry_for_host(self, host: str) -> RegistryRecord | None:
        r = self.conn.execute(
            select(registries).where(func.lower(registries.c.host) == host.lower()).order_by(registries.c.id)
        ).first()
        return None if r is None else _registry(r)

    def registry_credentials(self, registry_id: int) -> str:
        r = self.conn.execute(select(registries.c.credentials).where(registries.c.id == registry_id)).first()
        return "" if r is None else str(r.credentials)

    def list_registries(self, limit: int, offset: int) -> PageOf:
        rows, total = self._page(select(registries), [registries.c.id], limit, offset)
        return PageOf(tuple(_registry(r) for r in rows), total)

    def update_registry(self, registry_id: int, values: Mapping[str, Any], at: str) -> RegistryRecord | None:
        allowed = {k: v for k, v in values.items() if k in ("url", "host", "credentials", "scan_on_push")}
        self.conn.execute(update(registries).where(registries.c.id == registry_id).values(updated_at=at, **allowed))
        return self.get_registry(registry_id)

    def delete_registry(self, registry_id: int) -> bool:
        return bool(self.conn.execute(delete(registries).where(registries.c.id == registry_id)).rowcount)

    # -- scans --
    def add_scan(
        self,
        reference: str,
        registry_id: int | None,
        digest: str,
        requested_by: str,
        source: str,
        authorization: str,
        at: str,
    ) -> ScanRecord:
        pk = self.conn.execute(
            insert(scans).values(
                reference=reference,
                registry_id=registry_id,
                digest=digest,
                status="queued",
                error="",
                requested_by=requested_by,
                source=source,
                authorization=authorization,
                job_id="",
                counts={},
                created_at=at,
                started_at="",
                finished_at="",
            )
        ).inserted_primary_key
        assert pk is not None
        rec = self.get_scan(int(pk[0]))
        assert rec is not None
        return rec

    def get_scan(self, scan_id: int) -> ScanRecord | None:
        r = self.conn.execute(select(scans).where(scans.c.id == scan_id)).first()
        return None if r is None else _scan(r)

    def scan_authorization(self, scan_id: int) -> str:
        r = self.conn.execute(select(scans.c.authorization).where(scans.c.id == scan_id)).first()
        return "" if r is None else str(r.authorization)

    def set_scan_job(self, scan_id: int, job_id: str) -> None:
        self.conn.execute(update(scans).where(scans.c.id == scan_id).values(job_id=job_id[:64]))

    def start_scan(self, scan_id: int, at: str) -> ScanRecord | None:
        self.conn.execute(
            update(scans).where(scans.c.id == scan_id).values(status="running", started_at=at, finished_at="", error="")
        )
        return self.get_scan(scan_id)

    def finish_scan(
        self,
        scan_id: int,
        status: str,
        digest: str,
        error: str,
        counts: dict[str, int],
        at: str,
        *,
        drop_authorization: bool = True,
    ) -> None:
        values: dict[str, Any] = dict(status=status, error=_cut(error, 4000), counts=counts, finished_at=at)
        if digest:
            values["digest"] = digest
        if drop_authorization:
            values["authorization"] = ""
        self.conn.execute(update(scans).where(scans.c.id == scan_id).values(**values))

    def list_scans(self, status: str, digest: str, limit: int, offset: int) -> PageOf:
        conds = [
            c for c in (scans.c.status == status if status else None, scans.c.digest == digest if digest else None)
        ]
        q = select(scans).where(and_(True, *[c for c in conds if c is not None]))
        rows, total = self._page(q, [scans.c.id.desc()], limit, offset)
        return PageOf(tuple(_scan(r) for r in rows), total)

    def pending_scan_of(self, digest: str, since: str) -> ScanRecord | None:
        r = self.conn.execute(
            select(scans)
            .where(
                scans.c.digest == digest,
                or_(
                    scans.c.status.in_(("queued", "running")),
                    and_(scans.c.status == "done", scans.c.created_at >= since),
                ),
            )
            .order_by(scans.c.id.desc())
        ).first()
        return None if r is None else _scan(r)

    def done_scan_since(self, digest: str, since: str, exclude: int) -> ScanRecord | None:
        c = scans.c
        q = select(scans).where(c.digest == digest, c.status == "done", c.finished_at >= since, c.id != exclude)
        r = self.conn.execute(q.order_by(c.id.desc())).first()
        return None if r is None else _scan(r)

    # -- images, tags, SBOMs --
    def put_image(self, image: ImageIn, at: str) -> None:
        c = images.c
        values = dict(
            config_digest=image.config_digest,
            architecture=_cut(image.architecture, 32),
            os=_cut(image.os, 256),
            packages=image.packages,
            last_scanned_at=at,
            updated_at=at,
        )
        if self.conn.execute(select(c.digest).where(c.digest == image.digest)).first() is None:
            zero = {s.lower(): 0 for s in SEVERITIES}
            self.conn.execute(
                insert(images).values(
                    digest=image.digest,
                    first_seen=at,
                    db_identity="",
                    critical_with_fix=0,
                    secrets=0,
                    **zero,
                    **values,
                )
            )
        else:
            self.conn.execute(update(images).where(c.digest == image.digest).values(**values))

    def put_sbom(self, digest: str, document: dict[str, Any], at: str) -> None:
        if self.conn.execute(select(sboms.c.digest).where(sboms.c.digest == digest)).first() is None:
            self.conn.execute(insert(sboms).values(digest=digest, document=document, created_at=at, updated_at=at))
        else:
            self.conn.execute(update(sboms).where(sboms.c.digest == digest).values(document=document, updated_at=at))

    def sbom(self, digest: str) -> dict[str, Any] | None:
        r = self.conn.execute(select(sboms.c.document).where(sboms.c.digest == digest)).first()
        return None if r is None else dict(r.document)

    def see_tag(self, registry: str, repository: str, tag: str, digest: str, at: str, *, pushed: bool) -> None:
        c = image_tags.c
        registry, repository, tag = _cut(registry, 256), _cut(repository, 256), _cut(tag, 128)
        where = and_(c.registry == registry, c.repository == repository, c.tag == tag)
        if tag:
            # A tag points at one digest: moving it leaves the old digest in the repository by digest.
            moved = list(self.conn.execute(select(image_tags).where(where, c.digest != digest)))
            for r in moved:
                self.conn.execute(delete(image_tags).where(c.id == r.id))
                self.see_tag(registry, repository, "", r.digest, r.last_seen, pushed=False)
        in_repo = and_(c.registry == registry, c.repository == repository, c.digest == digest)
        if not tag:
            # By digest: only while no tag of the repository names it (else those rows say it all).
            tagged = [r.id for r in self.conn.execute(select(image_tags.c.id).where(in_repo, c.tag != ""))]
            if tagged:
                self.conn.execute(update(image_tags).where(c.id.in_(tagged), c.last_seen < at).values(last_seen=at))
                return
        else:
            self.conn.execute(delete(image_tags).where(in_repo, c.tag == ""))
        row = self.conn.execute(select(image_tags).where(where, c.digest == digest)).first()
        stamp = {"last_pushed": at} if pushed else {}
        if row is None:
            self.conn.execute(
                insert(image_tags).values(
                    registry=registry,
                    repository=repository,
                    tag=tag,
                    digest=digest,
                    first_seen=at,
                    last_seen=at,
                    last_pushed=at if pushed else "",
                    last_pulled="",
                )
            )
        elif at > row.last_seen or pushed:
            self.conn.execute(
                update(image_tags).where(c.id == row.id).values(last_seen=max(at, row.last_seen), **stamp)
            )

    def see_pull(self, registry: str, repository: str, tag: str, digest: str, at: str) -> int:
        c = image_tags.c
        conds = [c.registry == registry, c.repository == repository]
        which = c.digest == digest if digest else c.tag == tag
        if digest and tag:
            which = or_(c.digest == digest, c.tag == tag)
        q = update(image_tags).where(*conds, which, c.last_pulled < at).values(last_pulled=at)
        return int(self.conn.execute(q).rowcount or 0)

    # -- findings --
    def merge_findings(
        self, digest: str, found: Sequence[FindingIn], kinds: Iterable[str], at: str, *, touch: bool = True
    ) -> Merged:
        c = image_findings.c
        kinds = tuple(kinds)
        light = [col for col in image_findings.columns if col.name != "document"]
        stored = {r.fingerprint: r for r in self.conn.execute(select(*light).where(c.digest == digest))}
        appeared: list[FindingIn] = []
        inserts: list[dict[str, Any]] = []
        touched: list[int] = []
        changed = 0
        seen: set[str] = set()
        for f in found:
            if f.fingerprint in seen:
                continue
            seen.add(f.fingerprint)
            old = stored.get(f.fingerprint)
            if old is not None and old.status == "open" and old.revision == f.revision:
                if touch:
                    touched.append(old.id)
                continue
            cols = dict(
                kind=f.kind,
                rule_id=_cut(f.rule_id, 256),
                severity=f.severity,
                package=_cut(f.package, 512),
                installed=_cut(f.installed, 256),
                fixed_version=_cut(f.fixed_version, 512),
                has_fix=f.has_fix,
                revision=f.revision,
                document=f.render(),
                status="open",
                last_seen=at,
                fixed_at="",
            )
            if old is None:
                appeared.append(f)
                inserts.append(dict(digest=digest, fingerprint=f.fingerprint, first_seen=at) | cols)
                continue
            if old.status != "open":
                appeared.append(f)  # fixed once, back again
            self.conn.execute(update(image_findings).where(c.id == old.id).values(**cols))
            changed += 1
        if inserts:
            self.conn.execute(insert(image_findings), inserts)
        for i in range(0, len(touched), 500):
            self.conn.execute(update(image_findings).where(c.id.in_(touched[i : i + 500])).values(last_seen=at))
        fixed = [r for fp, r in stored.items() if fp not in seen and r.kind in kinds and r.status == "open"]
        ids = [r.id for r in fixed]
        for i in range(0, len(ids), 500):
            self.conn.execute(
                update(image_findings).where(c.id.in_(ids[i : i + 500])).values(status="fixed", fixed_at=at)
            )
        gone = tuple(_finding(r, document={}, status="fixed", fixed_at=at) for r in fixed)
        return Merged(tuple(appeared), gone, changed + len(inserts) + len(fixed))

    def refresh_counts(self, digest: str, db_identity: str | None, at: str, *, recount: bool = True) -> None:
        c = image_findings.c
        if not recount:
            if db_identity is not None:
                self.conn.execute(update(images).where(images.c.digest == digest).values(db_identity=db_identity))
            return
        rows = self.conn.execute(
            select(c.severity, c.kind, c.has_fix, func.count())
            .where(c.digest == digest, c.status == "open")
            .group_by(c.severity, c.kind, c.has_fix)
        )
        values: dict[str, Any] = {s.lower(): 0 for s in SEVERITIES} | {"critical_with_fix": 0, "secrets": 0}
        for severity, kind, has_fix, n in rows:
            key = str(severity).lower() if str(severity) in SEVERITIES else "unknown"
            values[key] += int(n)
            if kind == "secret":
                values["secrets"] += int(n)
            elif severity == "CRITICAL" and has_fix:
                values["critical_with_fix"] += int(n)
        if db_identity is not None:
            values["db_identity"] = db_identity
        self.conn.execute(update(images).where(images.c.digest == digest).values(updated_at=at, **values))

    def get_image(self, digest: str, *, with_tags: bool = True) -> ImageRecord | None:
        r = self.conn.execute(select(images).where(images.c.digest == digest)).first()
        if r is None:
            return None
        return _image(r, self.tags_of([digest]).get(digest, ()) if with_tags else ())

    def list_images(self, f: ImageFilter, limit: int, offset: int) -> PageOf:
        q = select(images)
        t = image_tags.c
        if f.registry or f.repository:
            conds = [t.registry == f.registry] if f.registry else []
            if f.repository:
                conds.append(t.repository == f.repository)
            q = q.where(images.c.digest.in_(select(t.digest).where(*conds)))
        if f.severity:
            q = q.where(getattr(images.c, f.severity.lower()) > 0)
        rows, total = self._page(q, [images.c.last_scanned_at.desc(), images.c.digest], limit, offset)
        tags = self.tags_of([r.digest for r in rows])
        return PageOf(tuple(_image(r, tags.get(r.digest, ())) for r in rows), total)

    def tags_of(self, digests: Sequence[str]) -> dict[str, tuple[TagRecord, ...]]:
        out: dict[str, list[TagRecord]] = {}
        c = image_tags.c
        for i in range(0, len(digests), 500):
            q = select(image_tags).where(c.digest.in_(digests[i : i + 500])).order_by(c.registry, c.repository, c.tag)
            for r in self.conn.execute(q):
                out.setdefault(r.digest, []).append(_tag(r))
        return {d: tuple(v) for d, v in out.items()}

    def put_index(self, index_digest: str, digest: str, at: str) -> None:
        # Written like put_sbom: the scans of one index digest hold one job lock (image:<digest>), so no
        # two write its row at once.
        c = image_indexes.c
        if self.conn.execute(select(c.index_digest).where(c.index_digest == index_digest)).first() is None:
            self.conn.execute(insert(image_indexes).values(index_digest=index_digest, digest=digest, seen_at=at))
        else:
            self.conn.execute(
                update(image_indexes).where(c.index_digest == index_digest).values(digest=digest, seen_at=at)
            )

    def image_of_index(self, index_digest: str) -> str | None:
        c = image_indexes.c
        r = self.conn.execute(select(c.digest).where(c.index_digest == index_digest)).first()
        return None if r is None else str(r.digest)

    def digest_of_tag(self, registry: str, repository: str, tag: str) -> str | None:
        c = image_tags.c
        r = self.conn.execute(
            select(c.digest)
            .where(c.registry == registry, c.repository == repository, c.tag == tag)
            .order_by(c.last_seen.desc())
        ).first()
        return None if r is None else str(r.digest)

    def findings(self, digest: str, f: FindingFilter, limit: int, offset: int) -> PageOf:
        c = image_findings.c
        conds = [c.digest == digest]
        if f.kind:
            conds.append(c.kind == f.kind)
        if f.severity:
            conds.append(c.severity == f.severity)
        if f.status:
            conds.append(c.status == f.status)
        if f.has_fix is not None:
            conds.append(c.has_fix.is_(f.has_fix))
        # vulnerabilities first, the most severe first, then by package and id
        rank = case({name: i for i, name in enumerate(SEVERITIES)}, value=c.severity, else_=len(SEVERITIES))
        order = [c.kind.desc(), rank, c.package, c.rule_id, c.id]
        rows, total = self._page(select(image_findings).where(*conds), order, limit, offset)
        return PageOf(tuple(_finding(r) for r in rows), total)

    def open_findings(self, digest: str, kind: str) -> list[StoredImageFinding]:
        c = image_findings.c
        q = select(image_findings).where(c.digest == digest, c.kind == kind, c.status == "open").order_by(c.id)
        return [_finding(r) for r in self.conn.execute(q)]

    def rescan_candidates(self, active_since: str, db_identity: str, force: bool) -> tuple[list[str], int]:
        t = image_tags.c
        activity = (
            select(t.digest, func.max(t.last_pushed).label("pushed"), func.max(t.last_pulled).label("pulled"))
            .group_by(t.digest)
            .subquery()
        )
        q = (
            select(
                images.c.digest, images.c.db_identity, images.c.last_scanned_at, activity.c.pushed, activity.c.pulled
            )
            .join(sboms, sboms.c.digest == images.c.digest)
            .outerjoin(activity, activity.c.digest == images.c.digest)
            .order_by(images.c.digest)
        )
        todo: list[str] = []
        aged = 0
        for r in self.conn.execute(q):
            last = max(r.pushed or "", r.pulled or "", r.last_scanned_at or "")
            if last < active_since:
                aged += 1
            elif force or r.db_identity != db_identity:
                todo.append(r.digest)
        return todo, aged

    # -- rescan runs --
    def last_rescan(self) -> RescanRecord | None:
        r = self.conn.execute(select(rescans).where(rescans.c.finished_at != "").order_by(rescans.c.id.desc())).first()
        return None if r is None else _rescan(r)

    def list_rescans(self, limit: int, offset: int) -> PageOf:
        rows, total = self._page(select(rescans), [rescans.c.id.desc()], limit, offset)
        return PageOf(tuple(_rescan(r) for r in rows), total)

    def add_rescan(self, db_identity: str, forced: bool, at: str) -> int:
        pk = self.conn.execute(
            insert(rescans).values(db_identity=db_identity, forced=forced, started_at=at, finished_at="")
        ).inserted_primary_key
        assert pk is not None
        return int(pk[0])

    def finish_rescan(self, rescan_id: int, images: int, aged_out: int, appeared: int, fixed: int, at: str) -> None:
        self.conn.execute(
            update(rescans)
            .where(rescans.c.id == rescan_id)
            .values(finished_at=at, images=images, aged_out=aged_out, appeared=appeared, fixed=fixed)
        )
