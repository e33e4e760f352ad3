"""Rows of the role matrix (:mod:`tests.server.test_roles`) for this area's routes, written by hand:
clusters (admin registers; readers read; the cluster's agent or an admin posts snapshots), exemptions
and suppression rules (security admins change, readers read), alert resolution and node sensors."""

from __future__ import annotations

from typing import Any

from tests.server.roles import ADMIN, AGENT, ANONYMOUS, EVERYONE, READER, ROLES, SEC_ADMIN  # noqa: F401

_READERS = frozenset({ADMIN, SEC_ADMIN, READER})
_TRIAGERS = frozenset({ADMIN, SEC_ADMIN})
_POSTERS = frozenset({ADMIN, AGENT})

#: (method, path) → who may call it.
ALLOWED: dict[tuple[str, str], frozenset[str]] = {
    ("POST", "/api/v1/clusters"): frozenset({ADMIN}),
    ("GET", "/api/v1/clusters"): _READERS,
    ("GET", "/api/v1/clusters/{cluster_id}"): _READERS,
    ("POST", "/api/v1/clusters/{cluster_id}/snapshot"): _POSTERS,
    ("GET", "/api/v1/clusters/{cluster_id}/assessments"): _READERS,
    ("GET", "/api/v1/clusters/{cluster_id}/assessments/{assessment_id}"): _READERS,
    ("GET", "/api/v1/clusters/{cluster_id}/recommendations"): _READERS,
    ("GET", "/api/v1/clusters/{cluster_id}/findings"): _READERS,
    ("GET", "/api/v1/clusters/{cluster_id}/score"): _READERS,
    ("POST", "/api/v1/exemptions"): _TRIAGERS,
    ("GET", "/api/v1/exemptions"): _READERS,
    ("GET", "/api/v1/exemptions/{exemption_id}"): _READERS,
    ("DELETE", "/api/v1/exemptions/{exemption_id}"): _TRIAGERS,
    ("POST", "/api/v1/suppressions"): _TRIAGERS,
    ("GET", "/api/v1/suppressions"): _READERS,
    ("GET", "/api/v1/suppressions/{suppression_id}"): _READERS,
    ("DELETE", "/api/v1/suppressions/{suppression_id}"): _TRIAGERS,
    ("POST", "/api/v1/alerts/{alert_id}/resolve"): _TRIAGERS,
    ("POST", "/api/v1/events/node"): _POSTERS,
}
#: A valid body per operation that takes one, so an allowed caller gets past validation.
BODIES: dict[tuple[str, str], Any] = {
    ("POST", "/api/v1/clusters"): {"id": "matrix"},
    ("POST", "/api/v1/clusters/{cluster_id}/snapshot"): {"apiVersion": "v1", "kind": "List", "items": []},
    ("POST", "/api/v1/exemptions"): {"controls": ["GAR-PSS-001"], "reason": "matrix"},
    ("POST", "/api/v1/suppressions"): {"rule": "matrix", "reason": "matrix"},
    ("POST", "/api/v1/events/node"): {"alerts": []},
}
#: A value for each path parameter of these routes (default "999999").
PARAMS: dict[str, str] = {"cluster_id": "no-such-cluster"}
