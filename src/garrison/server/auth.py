"""Authentication and roles as FastAPI dependencies: ``Depends(allow(Role.ADMIN, …))`` on a route is
the whole of its role rule (``tests/server/test_roles.py`` checks every route against its own table)."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Annotated, Any

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


# The dependencies below are ``async def`` though they never wait: FastAPI runs a plain ``def`` dependency
# in its thread pool, and three thread hops a request were most of an authenticated request's overhead.


async def store_of(request: Request) -> Store:
    store: Store = request.app.state.store
    return store


StoreDep = Annotated[Store, Depends(store_of)]


async def principal(
    request: Request, _creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> svc.Principal:
    """The caller, as :class:`garrison.server.app.Authenticate` resolved it from the bearer token before
    the body was read (``_creds`` declares the security scheme in the OpenAPI document)."""
    who = getattr(request.state, "principal", None)
    if not isinstance(who, svc.Principal):
        raise HTTPException(
            401, "an API token is required: Authorization: Bearer TOKEN", {"WWW-Authenticate": "Bearer"}
        )
    return who


def allow(*roles: Role) -> Callable[[svc.Principal], Coroutine[Any, Any, svc.Principal]]:
    """A dependency that lets the given roles through (403 for the others, 401 without a valid token)."""
    names = ", ".join(r.value for r in roles)

    async def check(who: Annotated[svc.Principal, Depends(principal)]) -> svc.Principal:
        if who.role not in roles:
            raise HTTPException(403, f"role {who.role.value} may not do this (allowed: {names})")
        return who

    return check
