"""Rows of the role matrix (:mod:`tests.server.test_roles`) for this area's routes, written by hand."""

from __future__ import annotations

from typing import Any

from tests.server.roles import ADMIN, AGENT, ANONYMOUS, EVERYONE, READER, ROLES, SEC_ADMIN  # noqa: F401

_READERS = frozenset({ADMIN, SEC_ADMIN, READER})
_N = "/api/v1/notifications"

#: (method, path) → who may call it.
ALLOWED: dict[tuple[str, str], frozenset[str]] = {
    ("GET", _N): _READERS,
    ("POST", _N): frozenset({ADMIN}),
    ("GET", _N + "/{target_id}"): _READERS,
    ("PATCH", _N + "/{target_id}"): frozenset({ADMIN}),
    ("DELETE", _N + "/{target_id}"): frozenset({ADMIN}),
    ("POST", _N + "/{target_id}/test"): frozenset({ADMIN}),
    ("GET", _N + "/{target_id}/deliveries"): _READERS,
}
#: A valid body per operation that takes one, so an allowed caller gets past validation.
BODIES: dict[tuple[str, str], Any] = {
    ("POST", _N): {"name": "matrix", "kind": "webhook", "url": "http://127.0.0.1:9/hook", "events": ["alert.new"]},
    ("PATCH", _N + "/{target_id}"): {"enabled": False},
}
#: A value for each path parameter of these routes (default "999999").
PARAMS: dict[str, str] = {}
