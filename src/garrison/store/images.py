"""The store's images, their tags per repository, SBOMs per digest, image findings, registries
(credentials encrypted), scan requests

Tables (on :data:`garrison.store.tables.metadata`) and repository.

Created by migration ``0002``."""

from __future__ import annotations

from typing import Protocol

from sqlalchemy import Connection

from garrison.store.tables import metadata  # noqa: F401 - the tables of this module go on it


class ImageRepository(Protocol):
    """(to be filled)"""


class SqlImages:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn
