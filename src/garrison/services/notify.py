"""Notifications: new critical findings and new alerts to webhooks (generic JSON, Slack-compatible),
delivered by jobs with retries."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from garrison.jobs import Queue
from garrison.store.repos import Store


def publish(store: Store, queue: Queue | None, event: str, title: str, data: Mapping[str, Any]) -> int:
    """Queue one delivery of ``event`` (``image.findings.new``, ``image.findings.fixed``, ``alert.new``)
    to every enabled target that subscribes to it; returns how many were queued. ``title`` is the
    one-line human summary (Slack's ``text``); ``data`` the JSON details (never secrets)."""
    return 0
