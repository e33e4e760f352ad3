"""Authentication and roles as FastAPI dependencies: ``Depends(allow(Role.ADMIN, …))`` on a route is
the whole of its role rule (``tests/server/test_roles.py`` checks every route against its own table)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from garrison.services import server as svc
from garrison.store.records import Role
from garrison.store.repos import Store

_bearer = HTTPBearer(auto_error=False, description="an API token: `Authorization: Bearer garrison_…`")

#: Who may read what is stored (alerts; later images, findings, clusters).
READERS = (Role.ADMIN, Role.SECURITY_ADMIN, Role.SECURITY_READER)
#: Who may triage (dismiss, reopen).
TRIAGERS = (Role.ADMIN, Role.SECURITY_ADMIN)
#: Who may post events.
POSTERS = (Role.ADMIN, Role.AGENT)


def store_of(request: Request) -> Store:
    store: Store = request.app.state.store
    return store


StoreDep = Annotated[Store, Depends(store_of)]


def principal(
    store: StoreDep, creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> svc.Principal:
    if creds is None or creds.scheme.lower() != "bearer":
        raise HTTPException(
            401, "an API token is required: Authorization: Bearer TOKEN", {"WWW-Authenticate": "Bearer"}
        )
    try:
        return svc.authenticate(store, creds.credentials)
    except svc.Unauthenticated as e:
        raise HTTPException(401, str(e), {"WWW-Authenticate": "Bearer"}) from None


def allow(*roles: Role) -> Callable[[svc.Principal], svc.Principal]:
    """A dependency that lets the given roles through (403 for the others, 401 without a valid token)."""
    names = ", ".join(r.value for r in roles)

    def check(who: Annotated[svc.Principal, Depends(principal)]) -> svc.Principal:
        if who.role not in roles:
            raise HTTPException(403, f"role {who.role.value} may not do this (allowed: {names})")
        return who

    return check
