"""Rows of the role matrix (:mod:`tests.server.test_roles`) for this area's routes, written by hand."""

from __future__ import annotations

from typing import Any

from tests.server.roles import ADMIN, AGENT, ANONYMOUS, EVERYONE, READER, ROLES, SEC_ADMIN  # noqa: F401

#: (method, path) → who may call it.
ALLOWED: dict[tuple[str, str], frozenset[str]] = {
    # The API server's call: an admin's token, or an agent's scoped to a cluster. The matrix's agent is
    # not scoped (403); tests/admission/test_admission_main_server.py calls it with a scoped one.
    ("POST", "/admission/validate"): frozenset({ADMIN}),
    ("GET", "/api/v1/admission/decisions"): frozenset({ADMIN, SEC_ADMIN, READER}),
}
#: A valid body per operation that takes one, so an allowed caller gets past validation.
BODIES: dict[tuple[str, str], Any] = {
    ("POST", "/admission/validate"): {
        "kind": "AdmissionReview",
        "apiVersion": "admission.k8s.io/v1",
        "request": {
            "uid": "0b9a3c1e-5f7d-4c2a-9e61-matrix",
            "kind": {"group": "", "version": "v1", "kind": "ConfigMap"},
            "operation": "CREATE",
            "namespace": "matrix",
            "name": "m",
            "userInfo": {"username": "matrix"},
            "object": {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "m", "namespace": "matrix"}},
        },
    },
}
#: A value for each path parameter of these routes (default "999999").
PARAMS: dict[str, str] = {}
