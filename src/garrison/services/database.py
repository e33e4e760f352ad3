"""The advisory database use cases: build or refresh it from a mirror, and tell what is in it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from garrison.config import Settings
from garrison.errors import DatabaseError
from garrison.progress import NO_PROGRESS, Progress

if TYPE_CHECKING:
    from garrison.vulndb.store import DBStatus


def update_database(settings: Settings, progress: Progress = NO_PROGRESS) -> DBStatus:
    """Fetch the mirror (conditional requests) and rebuild the database when anything changed; the old
    database keeps working until the new one is swapped in."""
    from garrison.vulndb.update import update_database as _update

    return _update(settings, progress)


def database_status(settings: Settings) -> DBStatus:
    """What the database holds and where each source came from. A missing database is an error that
    says how to make one."""
    from garrison.vulndb.store import AdvisoryDB

    path = settings.database_file
    if not path.exists():
        raise DatabaseError(f"no advisory database at {path}; run `garrison db update`")
    with AdvisoryDB.open(path) as db:
        return db.status()
