"""The advisory database: OSV ingest (pure parsing in :mod:`.osv`, fetching in :mod:`.fetch`),
the SQLite store (:mod:`.store`, built by :mod:`.build`), ``db update`` (:mod:`.update`) and the
version schemes (:mod:`.versions`).

Public entry points are re-exported here; import submodules directly for the rest.
"""

from garrison.vulndb.names import normalize_name
from garrison.vulndb.store import AdvisoryDB, DBStatus, SourceStatus
from garrison.vulndb.update import ensure_database, update_database
from garrison.vulndb.versions import InvalidVersion, VersionScheme, scheme_for

__all__ = [
    "AdvisoryDB",
    "DBStatus",
    "InvalidVersion",
    "SourceStatus",
    "VersionScheme",
    "ensure_database",
    "normalize_name",
    "scheme_for",
    "update_database",
]
