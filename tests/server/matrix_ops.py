"""Rows of the role matrix (:mod:`tests.server.test_roles`) for this area's routes, written by hand."""

from __future__ import annotations

from typing import Any

from tests.server.roles import ADMIN, AGENT, ANONYMOUS, EVERYONE, READER, ROLES, SEC_ADMIN  # noqa: F401

#: (method, path) → who may call it.
ALLOWED: dict[tuple[str, str], frozenset[str]] = {
    # Aggregates only (counts by route, status, task), but of everything stored: the readers' right.
    # Agents read nothing; a Prometheus scraper gets a security-reader token.
    ("GET", "/metrics"): frozenset({ADMIN, SEC_ADMIN, READER}),
}
#: A valid body per operation that takes one, so an allowed caller gets past validation.
BODIES: dict[tuple[str, str], Any] = {}
#: A value for each path parameter of these routes (default "999999").
PARAMS: dict[str, str] = {}
