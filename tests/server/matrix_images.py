"""Rows of the role matrix (:mod:`tests.server.test_roles`) for this area's routes, written by hand."""

from __future__ import annotations

from typing import Any

from tests.server.roles import ADMIN, AGENT, ANONYMOUS, EVERYONE, READER, ROLES, SEC_ADMIN  # noqa: F401

_READERS = frozenset({ADMIN, SEC_ADMIN, READER})

#: (method, path) → who may call it.
ALLOWED: dict[tuple[str, str], frozenset[str]] = {
    ("GET", "/api/v1/registries"): _READERS,
    ("POST", "/api/v1/registries"): frozenset({ADMIN}),
    ("GET", "/api/v1/registries/{registry_id}"): _READERS,
    ("PATCH", "/api/v1/registries/{registry_id}"): frozenset({ADMIN}),
    ("DELETE", "/api/v1/registries/{registry_id}"): frozenset({ADMIN}),
    # an agent only for its own registry (checked against the registry: 403 for another one)
    ("POST", "/api/v1/registries/{registry_id}/notifications"): frozenset({ADMIN, AGENT}),
    ("POST", "/api/v1/scans"): frozenset({ADMIN, SEC_ADMIN}),
    ("GET", "/api/v1/scans"): _READERS,
    ("GET", "/api/v1/scans/{scan_id}"): _READERS,
    ("GET", "/api/v1/images"): _READERS,
    ("GET", "/api/v1/images/{digest}"): _READERS,
    ("GET", "/api/v1/images/{digest}/findings"): _READERS,
    ("GET", "/api/v1/images/{digest}/sbom"): _READERS,
    ("POST", "/api/v1/rescans"): frozenset({ADMIN, SEC_ADMIN}),
    ("GET", "/api/v1/rescans"): _READERS,
}
#: A valid body per operation that takes one, so an allowed caller gets past validation.
BODIES: dict[tuple[str, str], Any] = {
    ("POST", "/api/v1/registries"): {"name": "matrix", "url": "http://127.0.0.1:1"},
    ("PATCH", "/api/v1/registries/{registry_id}"): {"scan_on_push": False},
    ("POST", "/api/v1/registries/{registry_id}/notifications"): {"events": []},
    # port 1 refuses at once: the job fails without touching an advisory database
    ("POST", "/api/v1/scans"): {"reference": "127.0.0.1:1/matrix/app:1"},
}
#: A value for each path parameter of these routes (default "999999").
PARAMS: dict[str, str] = {"digest": "sha256:" + "0" * 64}
