"""The server's settings: one frozen record built once by ``garrison server run|worker`` (flags,
``GARRISON_*`` variables, the config file) and handed to the app, the queue and every job."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ServerSettings:
    #: The server's data folder (SQLite database, the secret key file, caches).
    data_dir: Path
    #: The server's database (SQLAlchemy URL; its password is never logged).
    database_url: str
    #: The advisory database scans and rescans match against (None: the CLI's default location).
    vulndb: Path | None = None
    #: Images neither pushed nor pulled for this many days are no longer rescanned.
    rescan_max_age_days: int = 90
