"""``garrison db update`` and the "build it when missing" path of a scan.

Fetch every source first, then build: a mirror that is down or returns garbage fails the update
before the database file is touched, so the previous database keeps working.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from garrison import net
from garrison.config import DEFAULT_MIRROR, Settings
from garrison.errors import DatabaseError, MirrorError
from garrison.progress import Progress
from garrison.vulndb.build import KevSource, SourceFile, build_database
from garrison.vulndb.fetch import (
    OPTIONAL_ECOSYSTEMS,
    REQUIRED_ECOSYSTEMS,
    TIMEOUT,
    NotOnMirror,
    default_kev_url,
    fetch_ecosystem,
    fetch_kev,
    file_path,
)
from garrison.vulndb.store import AdvisoryDB, DBStatus, NewerSchemaError, OlderSchemaError

#: CISA's own feed, used with the public OSV bucket (which does not carry the catalog).
CISA_KEV_URL = "https://www.cisa.gov/sites/default/files/feeds/known_exploited_vulnerabilities.json"


def wanted_ecosystems(settings: Settings) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(required, optional) ecosystems: the user's list (all required) or the defaults."""
    chosen = settings.ecosystems
    if chosen:
        return chosen, ()
    return REQUIRED_ECOSYSTEMS, OPTIONAL_ECOSYSTEMS


def _kev_url(settings: Settings) -> tuple[str, bool]:
    """(url, explicit): an explicit KEV URL must work; the derived one is used when it exists."""
    if settings.kev_url:
        return settings.kev_url, True
    mirror = settings.mirror.rstrip("/")
    if mirror == DEFAULT_MIRROR.rstrip("/"):
        return CISA_KEV_URL, False
    local = file_path(mirror)
    if local is not None or urlsplit(mirror).path not in ("", "/"):
        return default_kev_url(mirror), False
    return "", False


def _fetch_all(
    settings: Settings, progress: Progress, client: httpx.Client
) -> tuple[list[SourceFile], KevSource | None, list[str]]:
    warnings: list[str] = []
    required, optional = wanted_ecosystems(settings)
    sources: list[SourceFile] = []
    for eco in (*required, *optional):
        progress.note(f"Fetching {eco} advisories")
        try:
            sources.append(fetch_ecosystem(client, settings.mirror, eco, settings.cache_dir, progress))
        except NotOnMirror as e:
            if eco in required:
                raise
            warnings.append(f"optional ecosystem {eco} skipped: {e}")
    kev: KevSource | None = None
    url, explicit = _kev_url(settings)
    if url:
        try:
            kev = fetch_kev(client, url, settings.cache_dir, progress)
        except MirrorError as e:
            if explicit:
                raise
            warnings.append(f"KEV catalog not loaded: {e}")
    else:
        warnings.append("KEV catalog not loaded: no kev_url configured for this mirror")
    return sources, kev, warnings


def _unchanged(path: Path, sources: list[SourceFile], kev: KevSource | None) -> DBStatus | None:
    """The existing database's status when it was built from exactly these bytes."""
    try:
        with AdvisoryDB.open(path) as db:
            status = db.status()
    except DatabaseError:
        return None
    have = {s.name: s.sha256 for s in status.sources}
    want = {s.name: s.sha256 for s in sources}
    if kev is not None:
        want["kev"] = kev.sha256
    return status if have == want else None


def update_database(settings: Settings, progress: Progress) -> DBStatus:
    """Fetch the mirror and (re)build the database; returns its status.

    Raises :class:`MirrorError` when a required source cannot be fetched or is invalid, leaving any
    existing database untouched.
    """
    if settings.offline:
        raise DatabaseError("cannot update the advisory database in offline mode")
    with net.client(settings, timeout=TIMEOUT) as http:
        sources, kev, warnings = _fetch_all(settings, progress, http)
    path = settings.database_file
    same = _unchanged(path, sources, kev)
    if same is not None:
        progress.note("Advisory database is up to date")
        return replace(same, warnings=tuple(warnings), rebuilt=False)
    status = build_database(path, sources, kev, progress, workers=max(1, settings.workers))
    return replace(status, warnings=(*warnings, *status.warnings))


def ensure_database(settings: Settings, progress: Progress) -> Path:
    """The database path, building the database first when it is missing or of an older schema.

    A database of a newer schema is never replaced behind the user's back (:class:`SchemaError`).
    """
    path = settings.database_file
    try:
        AdvisoryDB.open(path).close()
        return path
    except NewerSchemaError:
        raise
    except OlderSchemaError:
        if settings.offline:
            raise
    except DatabaseError:
        if settings.offline:
            raise DatabaseError(
                f"no usable advisory database at {path} and offline mode is on; run garrison db update"
            ) from None
    update_database(settings, progress)
    return path
