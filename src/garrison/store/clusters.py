"""The store's clusters, their resources and assessments
(recommendations, score over time), exemptions, alert suppression rules

Tables (on :data:`garrison.store.tables.metadata`) and repository.

Created by migration ``0003``."""

from __future__ import annotations

from typing import Protocol

from sqlalchemy import Connection

from garrison.store.tables import metadata  # noqa: F401 - the tables of this module go on it


class ClusterRepository(Protocol):
    """(to be filled)"""


class SqlClusters:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn
