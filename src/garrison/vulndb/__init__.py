"""The advisory database: OSV ingest (pure parsing in :mod:`.osv`, fetching in :mod:`.fetch`),
the SQLite store (:mod:`.store`, built by :mod:`.build`), ``db update`` (:mod:`.update`) and the
version schemes (:mod:`.versions`).

Public entry points are re-exported here lazily (PEP 562): importing a version scheme must not pull
in httpx and the fetch code, since start-up time counts for every scan.
"""

from __future__ import annotations

from garrison._lazy import lazy_exports

_EXPORTS = {
    "AdvisoryDB": "garrison.vulndb.store",
    "DBStatus": "garrison.vulndb.store",
    "SourceStatus": "garrison.vulndb.store",
    "ensure_database": "garrison.vulndb.update",
    "update_database": "garrison.vulndb.update",
    "normalize_name": "garrison.model.ecosystem",
    "InvalidVersion": "garrison.vulndb.versions",
    "VersionScheme": "garrison.vulndb.versions",
    "scheme_for": "garrison.vulndb.versions",
}


__getattr__ = lazy_exports(__name__, _EXPORTS)

__all__ = sorted(_EXPORTS)
