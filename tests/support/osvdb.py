"""A real advisory database built from a handful of test records.

The records are written as OSV JSON into one zip per ecosystem and built by
:func:`garrison.vulndb.build.build_database`, the path ``garrison db update`` takes, so the matching tests
read the same SQLite rows, packed ranges and row bounds a scan reads.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from garrison.model import Advisory, Severity
from garrison.model.vuln import Affected
from garrison.progress import NO_PROGRESS
from garrison.vulndb.build import KevSource, SourceFile, build_database, now
from garrison.vulndb.store import AdvisoryDB


def osv_record(advisory: Advisory, entries: Iterable[Affected]) -> dict[str, Any]:
    """The OSV record publishing ``entries`` under ``advisory`` (its aliases and a named severity)."""
    record: dict[str, Any] = {
        "schema_version": "1.6.0",
        "id": advisory.id,
        "modified": "2024-01-01T00:00:00Z",
        "aliases": list(advisory.aliases),
        "affected": [
            {
                "package": {"ecosystem": a.ecosystem, "name": a.package_name},
                "ranges": [
                    {"type": r.type, "events": [{e.kind: e.value} for e in r.events]}
                    | ({"repo": "https://example.invalid/repo"} if r.type == "GIT" else {})
                    for r in a.ranges
                ],
                "versions": list(a.versions),
            }
            for a in entries
        ],
    }
    if advisory.severity is not Severity.UNKNOWN:
        record["database_specific"] = {"severity": advisory.severity.name}
    return record


def build_test_db(
    directory: Path,
    affected: Iterable[Affected],
    advisories: Iterable[Advisory] = (),
    kev: Iterable[str] = (),
    extra_ecosystems: Iterable[str] = (),
    db_class: type[AdvisoryDB] = AdvisoryDB,
) -> AdvisoryDB:
    """Build and open (as ``db_class``) a database in ``directory`` holding ``affected`` (advisories not
    given get an unrated record of their own). ``extra_ecosystems`` get an empty archive each."""
    by_id = {a.id: a for a in advisories}
    grouped: dict[str, dict[str, list[Affected]]] = {}
    for a in affected:
        source = a.ecosystem.split(":", 1)[0]
        grouped.setdefault(source, {}).setdefault(a.advisory_id, []).append(a)
    for eco in extra_ecosystems:
        grouped.setdefault(eco, {})
    directory.mkdir(parents=True, exist_ok=True)
    sources = []
    for source, records in grouped.items():
        path = directory / f"{source}.zip"
        with zipfile.ZipFile(path, "w") as zf:
            for aid, entries in records.items():
                doc = osv_record(by_id.get(aid) or Advisory(id=aid), entries)
                zf.writestr(f"{aid}.json", json.dumps(doc))
            if not records:
                zf.writestr("README", "no records")
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        sources.append(SourceFile(source, path, path.as_uri(), now(), digest))
    kev_source = KevSource(frozenset(kev), "test:kev", now(), "0" * 64) if kev else None
    db_path = directory / "garrison.db"
    build_database(db_path, sources, kev_source, NO_PROGRESS, workers=1)
    return db_class.open(db_path)
