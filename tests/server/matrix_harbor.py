"""Rows of the role matrix (:mod:`tests.server.test_roles`) for this area's routes, written by hand."""

from __future__ import annotations

from typing import Any

from tests.server.roles import ADMIN, AGENT, ANONYMOUS, EVERYONE, READER, ROLES, SEC_ADMIN  # noqa: F401

_H = "/harbor/api/v1"

#: (method, path) → who may call it.
ALLOWED: dict[tuple[str, str], frozenset[str]] = {
    ("GET", _H + "/metadata"): frozenset({ADMIN, AGENT}),
    # an agent only for its own registry (the matrix's agent has none: 403; test_harbor checks the rest)
    ("POST", _H + "/scan"): frozenset({ADMIN}),
    ("GET", _H + "/scan/{scan_request_id}/report"): frozenset({ADMIN, AGENT}),
}
#: A valid body per operation that takes one, so an allowed caller gets past validation.
BODIES: dict[tuple[str, str], Any] = {
    # port 1 refuses at once: the job fails without touching an advisory database
    ("POST", _H + "/scan"): {
        "registry": {"url": "https://127.0.0.1:1"},
        "artifact": {"repository": "matrix/app", "digest": "sha256:" + "0" * 64, "tag": "1"},
    },
}
#: A value for each path parameter of these routes (default "999999").
PARAMS: dict[str, str] = {}
