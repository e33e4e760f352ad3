"""The validating admission webhook over HTTPS: a FastAPI router (``POST /admission/validate``) and the
standalone server ``garrison admission serve`` runs with uvicorn.

The router only reads the body (never more than the policy's ``maxRequestBytes``), hands it to the pure
engine (:func:`garrison.admission.review.handle`) within the ``?timeout=Ns`` the API server sent, and
logs one line per decision. A body that is not an AdmissionReview v1 gets a 400 with a JSON ``detail``;
the API server then applies the webhook's ``failurePolicy``.

FastAPI, uvicorn and cryptography are imported here only: ``garrison scan`` never loads them.
"""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path

import anyio
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse

from garrison.admission.policy import Policy
from garrison.admission.review import BadReview, handle

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


def router(policy: Policy) -> APIRouter:
    """``POST /admission/validate`` answering with ``policy`` (compiled once, by the caller)."""
    r = APIRouter()

    @r.post(PATH, response_model=None, summary="Kubernetes validating admission webhook (AdmissionReview v1)")
    async def validate(request: Request) -> JSONResponse:
        try:
            timeout = parse_timeout(request.query_params.get("timeout"))
            ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
            if ctype != "application/json":
                raise BadReview(f"Content-Type {ctype or '(none)'!r}: expected application/json", status=415)
            body = await _read_body(request, policy.max_request_bytes)
            with anyio.fail_after(max(timeout - MARGIN, 0.05)):
                # abandon_on_cancel: on timeout answer at once; the thread finishes on its own.
                req, verdict, doc = await anyio.to_thread.run_sync(handle, body, policy, abandon_on_cancel=True)
        except BadReview as exc:
            log.warning("admission: refused request: %s", exc)
            return JSONResponse({"detail": str(exc)}, status_code=exc.status)
        except TimeoutError:
            log.error("admission: no verdict within the API server's timeout %.1fs", timeout)
            return JSONResponse({"detail": "no verdict within the timeout"}, status_code=504)
        log.info(
            "admission: uid=%s %s %s %s/%s user=%s allowed=%s denied=%s",
            req.uid,
            req.operation,
            req.kind,
            req.namespace,
            req.name,
            req.username,
            verdict.allowed,
            ",".join(sorted({f.detail.control_id for f in verdict.denied})) or "-",
        )
        return JSONResponse(doc)

    return r


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
