"""The validating admission webhook over HTTPS (``POST /admission/validate``), in two forms:

- :func:`server_router`, mounted on the main server (``garrison server run``): the API server
  authenticates with a cluster agent's bearer token (or an admin's), the images' stored verdicts are
  consulted and every decision is recorded (:mod:`garrison.services.admission`); the decisions are listed
  at ``GET /api/v1/admission/decisions`` (:data:`API_ROUTERS`, readers);
- :func:`router`, the standalone ``garrison admission serve`` (uvicorn): no store, no token, the pure
  engine only (:func:`garrison.admission.review.handle`), meant for a private network or a sidecar.

Both read the body (never more than the policy's ``maxRequestBytes``), judge it within the
``?timeout=Ns`` the API server sent, and log one line per decision. A body that is not an
AdmissionReview v1 gets a 400 with a JSON error; the API server then applies the webhook's
``failurePolicy``.

FastAPI, uvicorn and cryptography are imported here only: ``garrison scan`` never loads them.
"""

from __future__ import annotations

import atexit
import base64
import datetime as dt
import ipaddress
import logging
import os
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from garrison.admission.policy import Policy
from garrison.admission.policy import default_policy as default_policy  # the main server's, for app.py
from garrison.admission.review import AdmissionRequest, BadReview, Verdict, handle
from garrison.server.auth import READERS, StoreDep, allow, principal
from garrison.services import admission as admission_svc
from garrison.services.server import Principal
from garrison.store.records import Role
from garrison.store.repos import Store

log = logging.getLogger("garrison.admission")

PATH = "/admission/validate"
#: Longest wait the API server may ask for (``timeoutSeconds`` is at most 30).
MAX_TIMEOUT = 30.0
#: Time kept back from the API server's timeout for the answer to travel.
MARGIN = 0.2

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m)")


def parse_timeout(text: str | None) -> float:
    """``?timeout=`` as the API server writes it (a Go duration: ``10s``, ``500ms``, ``1m``) → seconds;
    :class:`BadReview` when it does not parse. No parameter: the longest wait Kubernetes allows."""
    if text is None or text == "":
        return MAX_TIMEOUT
    pos, total = 0, 0.0
    for m in _DURATION.finditer(text):
        if m.start() != pos:
            break
        value = float(m.group(1))
        total += value / 1000 if m.group(2) == "ms" else value * 60 if m.group(2) == "m" else value
        pos = m.end()
    if pos != len(text) or total <= 0:
        raise BadReview(f"timeout {text!r} is not a duration such as 10s")
    return min(total, MAX_TIMEOUT)


async def _read_body(request: Request, limit: int) -> bytes:
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > limit:
        raise BadReview(f"AdmissionReview of {length} bytes is larger than the limit of {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BadReview(f"AdmissionReview larger than the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


Judge = Callable[[bytes], tuple[AdmissionRequest, Verdict, dict[str, Any]]]


async def _answer(request: Request, policy: Policy, judge: Judge) -> JSONResponse:
    """The webhook's answer: the body read within the policy's limit, judged in a worker thread within
    the API server's ``?timeout=``. A body that is not a review is an HTTP error (the API server then
    applies ``failurePolicy``), with the app's error body."""
    try:
        timeout = parse_timeout(request.query_params.get("timeout"))
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype != "application/json":
            raise BadReview(f"Content-Type {ctype or '(none)'!r}: expected application/json", status=415)
        body = await _read_body(request, policy.max_request_bytes)
        with anyio.fail_after(max(timeout - MARGIN, 0.05)):
            # abandon_on_cancel: on timeout answer at once; the thread finishes on its own.
            req, verdict, doc = await anyio.to_thread.run_sync(judge, body, abandon_on_cancel=True)
    except BadReview as exc:
        log.warning("admission: refused request: %s", exc)
        raise HTTPException(exc.status, str(exc)) from None
    except TimeoutError:
        log.error("admission: no verdict within the API server's timeout %.1fs", timeout)
        raise HTTPException(504, "no verdict within the timeout") from None
    log.info(
        "admission: uid=%s %s %s %s/%s user=%s allowed=%s denied=%s%s",
        req.uid,
        req.operation,
        req.kind,
        req.namespace,
        req.name,
        req.username,
        verdict.allowed,
        ",".join(sorted({f.detail.control_id for f in verdict.denied} | {i.rule for i in verdict.images_denied}))
        or "-",
        " break-glass" if verdict.break_glass else "",
    )
    return JSONResponse(doc)


_SUMMARY = "Kubernetes validating admission webhook (AdmissionReview v1)"


def router(policy: Policy) -> APIRouter:
    """The standalone webhook's ``POST /admission/validate`` answering with ``policy`` (compiled once, by
    the caller): no store (so no image verdicts and no recorded decisions) and no token."""
    r = APIRouter()

    @r.post(PATH, response_model=None, summary=_SUMMARY)
    async def validate(request: Request) -> JSONResponse:
        return await _answer(request, policy, lambda body: handle(body, policy))

    return r


async def webhook_caller(who: Annotated[Principal, Depends(principal)]) -> Principal:
    """The API server calling the main server's webhook: it sends the token of the webhook's kubeconfig
    (``AdmissionConfiguration``), which must be an agent's scoped to a cluster (the decisions are
    recorded for that cluster) or an admin's. The app's middleware resolved the token before the body
    was read (the path is one of its authenticated paths)."""
    if who.role is Role.AGENT and not who.user.cluster:
        raise HTTPException(
            403,
            "the admission webhook takes an agent token scoped to a cluster "
            "(garrison server user add NAME --role agent --cluster CLUSTER)",
        )
    if who.role not in (Role.ADMIN, Role.AGENT):
        raise HTTPException(403, f"role {who.role.value} may not do this (allowed: admin, agent of a cluster)")
    return who


_RECORDERS = threading.Lock()


def recorder_of(app: FastAPI) -> admission_svc.DecisionRecorder:
    """The app's decision recorder (``app.state.admission_recorder``), made on first use over the app's
    store and written out when the process exits."""
    with _RECORDERS:
        recorder = getattr(app.state, "admission_recorder", None)  # absent until the first decision
        if not isinstance(recorder, admission_svc.DecisionRecorder):
            recorder = admission_svc.DecisionRecorder(app.state.store)
            app.state.admission_recorder = recorder
            atexit.register(recorder.close)
        return recorder


def server_router() -> APIRouter:
    """The main server's ``POST /admission/validate``: a cluster's agent token (or an admin's), the
    images' stored verdicts, every decision recorded. The policy is ``app.state.admission_policy``."""
    r = APIRouter(tags=["admission"])

    @r.post(PATH, response_model=None, summary=_SUMMARY + ", decisions recorded")
    async def validate(request: Request, who: Annotated[Principal, Depends(webhook_caller)]) -> JSONResponse:
        policy: Policy = request.app.state.admission_policy
        store: Store = request.app.state.store

        recorder = recorder_of(request.app)

        def judge(body: bytes) -> tuple[AdmissionRequest, Verdict, dict[str, Any]]:
            return admission_svc.review(store, recorder, who, body, policy)

        return await _answer(request, policy, judge)

    return r


class DecisionOut(BaseModel):
    """A recorded admission decision."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    at: str
    cluster: str = Field(description="the calling agent's cluster (\"\" for an admin's token)")
    namespace: str
    kind: str
    name: str
    operation: str
    username: str = Field(description="the Kubernetes user who made the request")
    allowed: bool
    mode: str = Field(description="enforce or audit")
    reasons: list[str] = Field(
        description="each failure that denied (or would have, in audit mode or under break-glass)"
    )
    warnings: list[str] = Field(description="the warnings returned to the client")
    break_glass: str = Field(description='the break-glass reason when the annotation admitted the request, else ""')
    uid: str = Field(description="request.uid")
    dry_run: bool
    skipped: str = Field(description='why the request was not checked ("" when it was)')


class DecisionPage(BaseModel):
    items: list[DecisionOut]
    total: int
    limit: int
    offset: int


decisions = APIRouter(prefix="/admission", tags=["admission"])


@decisions.get("/decisions", response_model=DecisionPage, summary="recorded admission decisions, newest first")
def list_decisions(
    request: Request,
    store: StoreDep,
    _: Annotated[Principal, Depends(allow(*READERS))],
    cluster: Annotated[str, Query(max_length=256)] = "",
    namespace: Annotated[str, Query(max_length=256)] = "",
    kind: Annotated[str, Query(max_length=128)] = "",
    name: Annotated[str, Query(max_length=256)] = "",
    operation: Annotated[str, Query(max_length=16, description="CREATE, UPDATE, DELETE, CONNECT")] = "",
    user: Annotated[str, Query(max_length=256, description="the Kubernetes user")] = "",
    allowed: Annotated[bool | None, Query(description="true: admitted; false: denied")] = None,
    break_glass: Annotated[bool | None, Query(description="true: admitted by the break-glass annotation")] = None,
    uid: Annotated[str, Query(max_length=128, description="request.uid")] = "",
    since: Annotated[str, Query(max_length=64, description="at or after (ISO 8601)")] = "",
    until: Annotated[str, Query(max_length=64, description="at or before (ISO 8601)")] = "",
    limit: Annotated[int, Query(ge=1, le=1000, description="page size")] = 100,
    offset: Annotated[int, Query(ge=0, le=10_000_000, description="items to skip")] = 0,
) -> DecisionPage:
    f = admission_svc.decision_filter(
        cluster, namespace, kind, name, operation, user, allowed, break_glass, uid, since, until
    )
    page = admission_svc.list_decisions(store, recorder_of(request.app), f, limit, offset)
    items = [DecisionOut.model_validate(d) for d in page.items]
    return DecisionPage(items=items, total=page.total, limit=limit, offset=offset)


#: What the main server mounts under ``/api/v1``.
API_ROUTERS = (decisions,)


def app(policy: Policy) -> FastAPI:
    """The standalone webhook application: the router and ``/healthz``."""
    application = FastAPI(title="garrison admission webhook", docs_url=None, redoc_url=None)
    application.include_router(router(policy))

    @application.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return application


def parse_listen(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:8443`` for IPv6) → (host, port); :class:`ValueError` otherwise."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536 or not host:
        raise ValueError(f"--listen {text!r}: expected HOST:PORT, e.g. 127.0.0.1:8443")
    return host.strip("[]"), int(port)


def serve(policy: Policy, host: str, port: int, cert: Path, key: Path) -> None:
    """Run the webhook over TLS until interrupted."""
    import uvicorn

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    config = uvicorn.Config(
        app(policy),
        host=host,
        port=port,
        ssl_certfile=str(cert),
        ssl_keyfile=str(key),
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=5,
    )
    uvicorn.Server(config).run()


@dataclass(frozen=True)
class SelfSigned:
    """What :func:`self_signed` wrote."""

    ca_pem: bytes
    cert: Path
    key: Path
    ca: Path

    @property
    def ca_bundle(self) -> str:
        """The ``caBundle`` of the ValidatingWebhookConfiguration (base64 of the CA's PEM)."""
        return base64.b64encode(self.ca_pem).decode("ascii")


def _write(path: Path, data: bytes, mode: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.chmod(path, mode)


def self_signed(cert: Path, key: Path, hosts: tuple[str, ...] = ("127.0.0.1", "localhost")) -> SelfSigned:
    """A new CA (written next to ``cert`` as ``ca.crt``) and a serving certificate it signed for
    ``hosts`` (``cert``, and its key in ``key`` with mode 0600). Valid one year."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "garrison admission webhook CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    srv_key = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = []
    for h in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(h)))
        except ValueError:
            names.append(x509.DNSName(h))
    srv_cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])]))
        .issuer_name(ca_name)
        .public_key(srv_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=365))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    ca_pem = ca_cert.public_bytes(serialization.Encoding.PEM)
    ca_path = cert.parent / "ca.crt"
    _write(ca_path, ca_pem, 0o644)
    _write(cert, srv_cert.public_bytes(serialization.Encoding.PEM), 0o644)
    _write(
        key,
        srv_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ),
        0o600,
    )
    return SelfSigned(ca_pem=ca_pem, cert=cert, key=key, ca=ca_path)
