"""Harbor's pluggable scanner API under ``/harbor/api/v1`` (register ``https://GARRISON/harbor`` in Harbor
with ``Authorization: Bearer <token>``; see docs/harbor.md).

The caller is an admin or an agent (a registry's own: it scans that registry only); the app's
Authenticate middleware resolves the token for this prefix as for ``/api/v1`` (its 401 has garrison's
error body). Answers carry the spec's media types, and errors (403 included) its body,
``{"error": {"message": …}}``, which Harbor shows. :data:`ROUTERS` are mounted at the root by
:mod:`.app` (they carry their own prefix)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from garrison.server.auth import StoreDep, principal
from garrison.services import harbor as svc
from garrison.services.server import Principal
from garrison.store.records import Role

PREFIX = "/harbor/api/v1"
#: Who may call (the role is checked in each route, so that a 403 has Harbor's error body too).
CALLERS = (Role.ADMIN, Role.AGENT)
Caller = Annotated[Principal, Depends(principal)]


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": {"message": message}}, status_code=status, media_type=svc.ERROR)


def _refused(who: Principal) -> JSONResponse | None:
    """Harbor's 403 for a role other than admin or agent; None for those."""
    if who.role in CALLERS:
        return None
    return _error(403, f"role {who.role.value} may not do this (allowed: admin, agent)")


_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"description": text, "content": {svc.ERROR: {"schema": {"type": "object"}}}}
    for code, text in (
        (400, "not JSON, or a value of the wrong type; an SBOM report without ?sbom_media_type="),
        (415, "not a scan request media type"),
        (422, "a field is missing or invalid"),
        (500, "the scan failed (Harbor stops polling)"),
        (501, "a report type garrison does not produce (the raw vulnerability report)"),
        (503, "the server runs without a job queue"),
    )
}

harbor = APIRouter(prefix=PREFIX, tags=["harbor"])


@harbor.get(
    "/metadata",
    summary="the scanner's metadata and capabilities (Harbor's GetMetadata)",
    response_class=JSONResponse,
    responses={200: {"content": {f"{svc.METADATA}; version=1.1": {"schema": {"type": "object"}}}}},
)
def metadata(request: Request, who: Caller) -> Response:
    if refused := _refused(who):
        return refused
    try:
        media_type = svc.metadata_type(request.headers.get("accept", ""))
    except svc.HarborError as e:
        return _error(e.status, str(e))
    return JSONResponse(svc.metadata(request.app.state.settings, media_type), media_type=media_type)


@harbor.post(
    "/scan",
    status_code=202,
    summary="accept a scan request: enqueued, never scanned in the request (Harbor's AcceptScanRequest)",
    response_class=JSONResponse,
    responses={
        202: {"content": {svc.SCAN_RESPONSE: {"schema": {"type": "object"}}}},
        **{k: v for k, v in _ERRORS.items() if k != 500},
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                f"{svc.SCAN_REQUEST}; version=1.1": {"schema": {"type": "object"}},
                f"{svc.SCAN_REQUEST}; version=1.0": {"schema": {"type": "object"}},
            },
        }
    },
)
async def accept_scan(request: Request, store: StoreDep, who: Caller) -> Response:
    if refused := _refused(who):
        return refused
    queue = request.app.state.queue
    settings = request.app.state.settings
    try:
        svc.check_scan_request_type(request.headers.get("content-type", ""))
        body = await request.body()  # bounded by the app's body limit
        scan = svc.parse_scan_request(body)
        if queue is None or settings is None:
            return _error(503, "this server runs without a job queue: it cannot accept scans")
        scan_id = await run_in_threadpool(svc.accept_scan, store, queue, settings, who, scan)
    except svc.HarborError as e:
        return _error(e.status, str(e))
    return JSONResponse({"id": scan_id}, status_code=202, media_type=svc.SCAN_RESPONSE)


@harbor.get(
    "/scan/{scan_request_id}/report",
    summary="the scan's report; 302 with Refresh-After while it runs (Harbor's GetScanReport)",
    response_class=JSONResponse,
    responses={
        200: {"content": {t: {"schema": {"type": "object"}} for t in svc.PRODUCED}},
        400: _ERRORS[400],
        302: {"description": "not ready: ask again after Refresh-After seconds"},
        404: {"description": "no such scan request"},
        406: {"description": "an Accept garrison cannot answer"},
        500: _ERRORS[500],
        501: _ERRORS[501],
    },
)
def get_report(
    request: Request,
    store: StoreDep,
    who: Caller,
    scan_request_id: str,
    sbom_media_type: Annotated[
        str, Query(description="an SBOM report's format: application/spdx+json or application/vnd.cyclonedx+json")
    ] = "",
) -> Response:
    if refused := _refused(who):
        return refused
    try:
        media_type = svc.report_type(request.headers.get("accept", ""))
        state = svc.get_report(store, who, scan_request_id, media_type, sbom_media_type)
    except svc.HarborError as e:
        return _error(e.status, str(e))
    if state.report is None:
        headers = {"Refresh-After": str(state.refresh_after), "Location": request.url.path}
        return Response(status_code=302, headers=headers)
    return JSONResponse(state.report, media_type=media_type)


ROUTERS: list[APIRouter] = [harbor]
