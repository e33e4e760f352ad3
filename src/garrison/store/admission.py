"""The store's admission decisions (each one recorded)

Tables (on :data:`garrison.store.tables.metadata`) and repository.

Created by migration ``0005``."""

from __future__ import annotations

from typing import Protocol

from sqlalchemy import Connection

from garrison.store.tables import metadata  # noqa: F401 - the tables of this module go on it


class AdmissionRepository(Protocol):
    """(to be filled)"""


class SqlAdmission:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn
