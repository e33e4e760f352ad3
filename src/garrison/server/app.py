"""The FastAPI application: :func:`create_app` over a store and a runtime rule set.

Anonymous: ``/healthz`` (the process answers) and ``/readyz`` (the database answers). Everything under
``/api/v1``, and ``/metrics``, needs a bearer token and a role (:mod:`.auth`). Request bodies are bounded
before any route reads them; every error is JSON ``{"error": message, "status": code}``; nothing logs a token.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from sqlalchemy.exc import DataError, OperationalError, StatementError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from garrison.errors import GarrisonError, InputError, UsageError
from garrison.jobs import Queue
from garrison.runtime.engine import RuleSet
from garrison.runtime.receiver import DEFAULT_MAX_BODY
from garrison.server.schemas import ErrorOut, Health
from garrison.services import server as svc
from garrison.services.settings import ServerSettings
from garrison.store.repos import Store

log = logging.getLogger("garrison.server")

API = "/api/v1"
#: Largest JSON body of the management routes.
MAX_JSON_BODY = 64 * 1024
#: The audit webhook's largest body (kube-apiserver's batches; the receiver's own limit).
MAX_EVENT_BODY = DEFAULT_MAX_BODY
#: Routes that take audit events (their own body limit and content type).
EVENT_PATHS = frozenset({f"{API}/events/k8s-audit", f"{API}/events/node"})
#: Routes that take a cluster snapshot (``kubectl get … -A -o json``): the events' body limit too.
SNAPSHOT_PATHS = re.compile(rf"{API}/clusters/[^/]+/snapshot")
#: The admission webhook (its body limit is the policy's).
ADMISSION_PATH = "/admission/validate"
#: Paths outside ``/api/v1`` that need a token all the same.
AUTHENTICATED_PATHS = frozenset({"/metrics", "/admission/validate"})

_STATUS: tuple[tuple[type[GarrisonError], int], ...] = (
    (svc.Unauthenticated, 401),
    (svc.Forbidden, 403),
    (svc.NotFound, 404),
    (svc.Refused, 409),
    (InputError, 422),
    (UsageError, 400),
)


_CHALLENGE = {"WWW-Authenticate": "Bearer"}
#: The answer to a value the database cannot hold.
UNSTORABLE = (
    "invalid request: a value the database cannot store (a number out of range, a NUL character "
    "or an unpaired surrogate in a string)"
)
#: The Prometheus text exposition format.
METRICS_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message, "status": status}, status_code=status, headers=headers)


class Authenticate:
    """Resolves the bearer token of every ``/api/v1`` request into a :class:`~garrison.services.server.Principal`
    (``scope["state"]["principal"]``) before anything reads the body, so that a caller without a valid
    token gets 401 whatever it sends; the routes' dependencies then check the role (:mod:`.auth`)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = str(scope["path"]) if scope["type"] == "http" else ""
        if not (path.startswith((API + "/", "/harbor/")) or path in AUTHENTICATED_PATHS):  # Harbor: .harbor
            await self.app(scope, receive, send)
            return
        header = dict(scope.get("headers") or ()).get(b"authorization", b"").decode("latin-1")
        scheme, _, secret = header.partition(" ")
        token = secret.strip()
        if scheme.lower() != "bearer" or not token:
            await _error(401, "an API token is required: Authorization: Bearer TOKEN", _CHALLENGE)(scope, receive, send)
            return
        from starlette.concurrency import run_in_threadpool

        state = scope["app"].state
        cache: svc.TokenCache = state.token_cache
        try:
            # A token checked within the cache's time needs no database, nor a thread.
            digest = svc.token_digest(token)
            who = cache.get(digest)
            if who is None:
                who = await run_in_threadpool(svc.authenticate_digest, state.store, digest, cache)
        except svc.Unauthenticated as e:
            await _error(401, str(e), _CHALLENGE)(scope, receive, send)
            return
        except OperationalError as e:  # the token cannot be checked: not the caller's fault, nor a 401
            log.error("database unavailable: %s", type(e.orig).__name__)
            await _error(503, "database unavailable")(scope, receive, send)
            return
        scope.setdefault("state", {})["principal"] = who
        await self.app(scope, receive, send)


class BodyLimit:
    """Reads a request's whole body before the app does, refusing it (413) past the path's limit, whether
    announced by ``Content-Length`` or streamed in chunks; then replays it to the app. An event route's
    body that is not JSON is refused (415) before it is read. (A plain ASGI middleware: Starlette's
    ``@app.middleware("http")`` costs a task group and two memory streams per request.)"""

    def __init__(self, app: ASGIApp, max_json: int, max_events: int) -> None:
        self.app = app
        self.max_json = max_json
        self.max_events = max_events

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        limit = self.max_events if path in EVENT_PATHS or SNAPSHOT_PATHS.fullmatch(path) else self.max_json
        if path == ADMISSION_PATH:  # the policy's maxRequestBytes: an UPDATE review carries two objects
            limit = scope["app"].state.admission_policy.max_request_bytes
        headers = dict(scope.get("headers") or ())
        if path in EVENT_PATHS and scope["method"] == "POST":
            ctype = headers.get(b"content-type", b"").decode("latin-1").split(";", 1)[0].strip().lower()
            if ctype != "application/json":
                await _error(415, "audit events are application/json")(scope, receive, send)
                return
        declared = headers.get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            await _error(413, f"request body over {limit} bytes")(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            msg = await receive()
            if msg["type"] == "http.disconnect":
                return
            chunk = msg.get("body", b"")
            size += len(chunk)
            if size > limit:
                await _error(413, f"request body over {limit} bytes")(scope, receive, send)
                return
            chunks.append(chunk)
            if not msg.get("more_body", False):
                break
        body = b"".join(chunks)
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


def create_app(
    store: Store,
    ruleset: RuleSet,
    *,
    queue: Queue | None = None,
    settings: ServerSettings | None = None,
    max_json_body: int = MAX_JSON_BODY,
    max_event_body: int = MAX_EVENT_BODY,
) -> FastAPI:
    """The server's app over ``store``; the audit webhook evaluates with ``ruleset``; background work
    goes to ``queue`` (routes that need one answer 503 without it)."""
    from garrison import __version__
    from garrison.server import admission, clusters, harbor, images, notify, observe
    from garrison.server.auth import READERS, allow
    from garrison.server.routes import ROUTERS

    app = FastAPI(
        title="garrison",
        version=__version__,
        description="garrison's server: alerts, triage with roles, the Kubernetes audit webhook. See docs/server.md.",
        docs_url=None,  # no anonymous pages: the OpenAPI document is the one public description
        redoc_url=None,
        responses={401: {"model": ErrorOut}, 403: {"model": ErrorOut}, 422: {"model": ErrorOut}},
    )
    app.state.store = store
    app.state.ruleset = ruleset
    app.state.queue = queue
    app.state.settings = settings
    app.state.token_cache = svc.token_cache(store, settings.auth_cache_ttl if settings else 0.0)
    metrics = observe.Metrics(__version__)
    metrics.sources.append(observe.store_gauges(store))
    app.state.metrics = metrics

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return _error(exc.status_code, str(exc.detail), dict(exc.headers or {}) or None)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        parts = []
        for err in list(exc.errors())[:5]:
            where = ".".join(str(x) for x in err.get("loc", ()) if x != "body") or "body"
            parts.append(f"{where}: {err.get('msg', 'invalid')}")
        return _error(422, "invalid request: " + "; ".join(parts))

    @app.exception_handler(GarrisonError)
    async def _garrison(_: Request, exc: GarrisonError) -> JSONResponse:
        for cls, status in _STATUS:
            if isinstance(exc, cls):
                headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
                return _error(status, str(exc), headers)
        log.error("unexpected garrison error: %s", type(exc).__name__)
        return _error(500, "internal error")

    async def _unstorable(_: Request, exc: Exception) -> JSONResponse:
        # The database refused a value the caller sent (an id past 64 bits, a NUL character, an unpaired
        # surrogate in a string): the transaction rolled back, nothing was written, and it is the
        # request that is wrong. Any other database failure stays a 500.
        cause = exc.orig if isinstance(exc, StatementError) and exc.orig is not None else exc
        if isinstance(exc, DataError) or isinstance(cause, OverflowError | UnicodeError | ValueError):
            log.warning("refused a value the database cannot store: %s", type(cause).__name__)
            return _error(422, UNSTORABLE)
        if isinstance(exc, OperationalError):  # down, unreachable, or locked past the busy timeout
            log.error("database unavailable: %s", type(cause).__name__)
            return _error(503, "database unavailable")
        log.error("internal error: %s", type(exc).__name__, exc_info=exc)
        return _error(500, "internal error")

    for kind in (StatementError, OverflowError, UnicodeError):
        app.add_exception_handler(kind, _unstorable)

    @app.exception_handler(RecursionError)
    async def _too_deep(_: Request, exc: RecursionError) -> JSONResponse:
        # A body nested thousands deep ([[[[…]]]]) exhausts the parser's recursion: the caller's fault.
        log.warning("refused a body nested too deeply")
        return _error(422, "invalid request: the document is nested too deeply")

    @app.exception_handler(Exception)
    async def _crash(_: Request, exc: Exception) -> JSONResponse:
        log.error("internal error: %s", type(exc).__name__, exc_info=exc)
        return _error(500, "internal error")

    @app.get("/healthz", response_model=Health, tags=["health"], summary="the process answers")
    def healthz() -> Health:
        return Health(status="ok")

    @app.get("/readyz", response_model=Health, tags=["health"], summary="the database answers")
    def readyz() -> Any:
        try:
            store.ping()
        except Exception as e:  # any database failure means "not ready"
            log.warning("not ready: %s", type(e).__name__)
            return _error(503, "database unavailable")
        return Health(status="ready")

    @app.get(
        "/metrics",
        response_class=PlainTextResponse,
        tags=["health"],
        summary="Prometheus metrics (readers): requests by route, alerts, jobs, build",
        dependencies=[Depends(allow(*READERS))],
    )
    def prometheus() -> PlainTextResponse:
        return PlainTextResponse(metrics.render(), media_type=METRICS_TYPE)

    # The webhook first: routes are matched in order, and it is the one route the API server calls
    # 200 times a second (behind every other route it spent ~9% of its CPU on failed matches).
    app.state.admission_policy = admission.default_policy()  # the webhook's policy (tests may replace it)
    app.include_router(admission.server_router())
    for router in (*ROUTERS, *images.ROUTERS, *clusters.ROUTERS, *notify.ROUTERS, *admission.API_ROUTERS):
        app.include_router(router, prefix=API)
    for router in harbor.ROUTERS:
        app.include_router(router)
    app.add_middleware(BodyLimit, max_json=max_json_body, max_events=max_event_body)
    app.add_middleware(Authenticate)  # before the body limit: no body is read for a caller without a valid token
    # outermost: every answer (a 401 or a 413 too) is logged and counted once
    app.add_middleware(observe.RequestLog, metrics=metrics, routes=lambda: app.routes)
    return app
