"""The role names of the matrix, shared by its parts (``matrix_*.py``)."""

from __future__ import annotations

ADMIN, SEC_ADMIN, READER, AGENT = "admin", "security-admin", "security-reader", "agent"
ROLES = (ADMIN, SEC_ADMIN, READER, AGENT)
ANONYMOUS = "anonymous"
EVERYONE = frozenset({ANONYMOUS, *ROLES})
