"""Shared real inputs for the oracle and real-database matching tests: an advisory database built once
(cached under .cache/test-images, lock-protected) from the real OSV mirror files in shared/vulndb.

No tests here; pytest collects the module harmlessly."""

from __future__ import annotations

import hashlib
from pathlib import Path

from tests.support.cache import cached
from tests.support.shared import VULNDB, have_vulndb, osv_zip

from garrison.progress import NO_PROGRESS

#: The real mirror (read-only; never copied into the repo).
MIRROR = VULNDB
ECOSYSTEMS = ("Debian", "PyPI", "npm")
DB_VERSION = "oracle-db-v1"


def mirror_zip(ecosystem: str) -> Path:
    return osv_zip(ecosystem)


def have_mirror() -> bool:
    return have_vulndb(*ECOSYSTEMS)


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _build(dest: Path) -> None:
    from garrison.vulndb.build import KevSource, SourceFile, build_database
    from garrison.vulndb.kev import parse_kev

    sources = [
        SourceFile(e, mirror_zip(e), mirror_zip(e).as_uri(), "2026-01-01T00:00:00Z", _sha(mirror_zip(e)))
        for e in ECOSYSTEMS
    ]
    kev_path = MIRROR / "kev" / "known_exploited_vulnerabilities.json"
    kev = None
    if kev_path.is_file():
        data = kev_path.read_bytes()
        kev = KevSource(parse_kev(data), kev_path.as_uri(), "2026-01-01T00:00:00Z", hashlib.sha256(data).hexdigest())
    build_database(dest / "garrison.db", sources, kev, NO_PROGRESS, workers=2)


def real_db_path() -> Path:
    """Path of the built database (built on first use, about half a minute)."""
    from garrison.vulndb.store import SCHEMA_VERSION

    # The schema version is part of the key: a schema bump must rebuild the cached database.
    sizes = ",".join(f"{e}={mirror_zip(e).stat().st_size}" for e in ECOSYSTEMS)
    stamp = f"{DB_VERSION}:schema{SCHEMA_VERSION}:{sizes}"
    return cached("oracle-advisory-db", stamp, _build) / "garrison.db"
