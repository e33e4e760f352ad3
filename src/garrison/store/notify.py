"""The store's notification targets (webhooks, Slack) and deliveries with retries

Tables (on :data:`garrison.store.tables.metadata`) and repository.

Created by migration ``0006``."""

from __future__ import annotations

from typing import Protocol

from sqlalchemy import Connection

from garrison.store.tables import metadata  # noqa: F401 - the tables of this module go on it


class NotificationRepository(Protocol):
    """(to be filled)"""


class SqlNotifications:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn
