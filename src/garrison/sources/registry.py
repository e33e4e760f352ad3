"""Registry references: an OCI distribution v2 client on httpx.

Why our own client: the scanner needs only pull (manifests, config, blobs) but must get the details
right that real registries differ on: the full ``Accept`` list (distribution 2.8 answers 404, or a
schema1 manifest with another digest, when a type is missing), ``Content-Type`` checks, digests
verified on every body, Basic and Bearer-token auth, and blobs streamed straight into the layer
walker (never held in memory or written to disk).

Credentials come from :class:`~garrison.config.Settings` (``--username``/``--password`` or
``GARRISON_USERNAME``/``GARRISON_PASSWORD``), else from ``~/.docker/config.json`` ``auths``.
Plain HTTP is used only for hosts listed in ``settings.insecure_registries``.
"""

from __future__ import annotations

import base64
import json
import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from garrison import net
from garrison.config import Settings
from garrison.errors import AuthError, BadImageError, LimitExceededError, NotFoundError, RegistryError
from garrison.model import LayerInfo, SourceKind
from garrison.sources.base import OpenedImage, ProgressFn
from garrison.sources.common import (
    ACCEPT_MANIFESTS,
    CHUNK,
    INDEX_TYPES,
    MANIFEST_TYPES,
    VerifyingReader,
    check_digest,
    config_digest,
    image_from_config,
    layers_from,
    load_json,
    parse_config,
    resolve_manifest,
    verify_bytes,
)
from garrison.sources.reference import DOCKER_HUB, RegistryRef

#: Transport errors worth another attempt; a refused connection or a failed handshake is reported at once.
_RETRYABLE = (httpx.ReadError, httpx.WriteError, httpx.RemoteProtocolError, httpx.TimeoutException)
#: Registries answer slowly under load; a layer blob may take long between chunks.
TIMEOUT = httpx.Timeout(60.0, connect=15.0)
_SCHEMA1 = (
    "application/vnd.docker.distribution.manifest.v1+prettyjws",
    "application/vnd.docker.distribution.manifest.v1+json",
)
_CHALLENGE_PARAM = re.compile(r'(\w+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]+))')
_PLAIN_HTTP_HINTS = ("WRONG_VERSION_NUMBER", "wrong version number", "record layer failure", "http request")


# -- credentials --------------------------------------------------------------------------------------


def _host_key(text: str) -> str:
    """Normalize a docker config ``auths`` key (``https://index.docker.io/v1/``, ``host:port``…)."""
    t = re.sub(r"^[a-z]+://", "", text.strip().lower()).split("/", 1)[0]
    return DOCKER_HUB if t in ("index.docker.io", "registry-1.docker.io", "docker.io") else t


def docker_config_credentials(host: str, config_file: Path | None = None) -> tuple[str, str] | None:
    """(username, password) for ``host`` from a Docker ``config.json`` (``auths`` entries only;
    credential helpers run external programs and are not consulted)."""
    if config_file is None:
        base = os.environ.get("DOCKER_CONFIG") or str(Path.home() / ".docker")
        config_file = Path(base) / "config.json"
    try:
        doc = json.loads(config_file.read_text())
    except (OSError, ValueError):
        return None
    auths = doc.get("auths") if isinstance(doc, dict) else None
    if not isinstance(auths, dict):
        return None
    want = _host_key(host)
    for key, entry in auths.items():
        if _host_key(key) != want or not isinstance(entry, dict):
            continue
        if entry.get("auth"):
            try:
                user, _, password = base64.b64decode(str(entry["auth"])).decode().partition(":")
            except (ValueError, UnicodeDecodeError):
                continue
            return user, password
        if entry.get("username"):
            return str(entry["username"]), str(entry.get("password", ""))
    return None


def parse_challenge(header: str) -> tuple[str, dict[str, str]]:
    """``WWW-Authenticate: Bearer realm="…",service="…",scope="…"`` → ("bearer", params)."""
    scheme, _, rest = header.strip().partition(" ")
    params = {
        m.group(1).lower(): (m.group(2) if m.group(2) is not None else m.group(3))
        for m in _CHALLENGE_PARAM.finditer(rest)
    }
    return scheme.lower(), params


def _insecure_hosts(settings: Settings) -> set[str]:
    return {h.lower() for h in settings.insecure_registries}


# -- the client ---------------------------------------------------------------------------------------


class RegistryClient:
    """Pull-only client for one repository. Thread-safe: layers are fetched from worker threads."""

    def __init__(self, ref: RegistryRef, settings: Settings, transport: httpx.BaseTransport | None = None) -> None:
        self.ref = ref
        self.settings = settings
        host = ref.api_host
        self.insecure = host.lower() in _insecure_hosts(settings) or ref.host.lower() in _insecure_hosts(settings)
        self.base = f"{'http' if self.insecure else 'https'}://{host}/v2/{ref.repository}"
        creds = (settings.username, settings.password) if settings.username else None
        self.creds = creds or docker_config_credentials(ref.host)
        self._auth_header: str | None = None
        self._lock = threading.Lock()
        self.http = net.client(settings, timeout=TIMEOUT, transport=transport)

    def close(self) -> None:
        self.http.close()

    # -- auth --
    def _basic(self) -> str:
        if not self.creds:
            raise AuthError(f"{self.ref.host}: the registry requires credentials (--username/--password)")
        raw = f"{self.creds[0]}:{self.creds[1]}".encode()
        return "Basic " + base64.b64encode(raw).decode()

    def _fetch_token(self, params: dict[str, str]) -> str:
        realm = params.get("realm")
        if not realm or not realm.startswith(("https://", "http://")):
            raise AuthError(f"{self.ref.host}: bearer challenge without a usable realm")
        query = {"service": params.get("service", "")}
        query["scope"] = params.get("scope") or f"repository:{self.ref.repository}:pull"
        headers = {"Authorization": self._basic()} if self.creds else {}
        try:
            resp = self.http.get(realm, params={k: v for k, v in query.items() if v}, headers=headers)
        except httpx.HTTPError as exc:
            raise RegistryError(f"{self.ref.host}: token server {realm} unreachable: {exc}") from None
        if resp.status_code in (401, 403):
            raise AuthError(f"{self.ref.host}: the token server refused the credentials ({resp.status_code})")
        if resp.status_code != 200:
            raise RegistryError(f"{self.ref.host}: token server answered {resp.status_code}")
        try:
            doc = resp.json()
        except ValueError:
            raise RegistryError(f"{self.ref.host}: token server answered non-JSON") from None
        token = doc.get("token") or doc.get("access_token") if isinstance(doc, dict) else None
        if not isinstance(token, str) or not token:
            raise RegistryError(f"{self.ref.host}: token server answered without a token")
        return "Bearer " + token

    def _authenticate(self, resp: httpx.Response, failed_header: str | None) -> None:
        """Answer a 401 challenge once; a second 401 with the same credentials is an AuthError."""
        challenge = resp.headers.get("www-authenticate", "")
        scheme, params = parse_challenge(challenge)
        with self._lock:
            if self._auth_header != failed_header:
                return  # another thread already refreshed it
            if scheme == "basic":
                header = self._basic()
            elif scheme == "bearer":
                header = self._fetch_token(params)
            else:
                raise AuthError(f"{self.ref.host}: unsupported authentication scheme {scheme or '(none)'!r}")
            if header == failed_header:
                raise AuthError(f"{self.ref.host}: the registry refused the credentials")
            self._auth_header = header

    def _send_once(self, method: str, url: str, headers: dict[str, str]) -> httpx.Response:
        """One request (streamed), retried by :func:`garrison.net.send` when busy or dropped."""
        try:
            return net.send(
                self.http, lambda: self.http.build_request(method, url, headers=headers), retry_on=_RETRYABLE
            )
        except httpx.ConnectError as exc:
            raise self._connect_error(exc) from None
        except httpx.HTTPError as exc:
            raise RegistryError(f"{self.ref.host}: {type(exc).__name__}: {exc}") from None

    def _send(self, method: str, url: str, headers: dict[str, str]) -> httpx.Response:
        """A streamed request with the current credentials; a 401 is answered once."""
        for attempt in range(2):
            sent_auth = self._auth_header
            h = dict(headers)
            if sent_auth:
                h["Authorization"] = sent_auth
            resp = self._send_once(method, url, h)
            if resp.status_code != 401:
                return resp
            resp.read()
            resp.close()
            if attempt == 1:
                break
            self._authenticate(resp, sent_auth)
        raise AuthError(f"{self.ref.host}: authentication failed for {self.ref.repository} (check the credentials)")

    def _connect_error(self, exc: Exception) -> RegistryError:
        text = str(exc)
        if not self.insecure and any(h in text for h in _PLAIN_HTTP_HINTS):
            return RegistryError(
                f"{self.ref.api_host}: TLS handshake failed; the registry seems to speak plain HTTP. "
                f"If you trust it, allow it with --insecure-registry {self.ref.api_host} "
                "(or GARRISON_INSECURE_REGISTRIES)"
            )
        if "CERTIFICATE_VERIFY_FAILED" in text:
            return RegistryError(f"{self.ref.api_host}: TLS certificate not trusted ({text}); pass --ca-file")
        return RegistryError(f"{self.ref.api_host}: cannot connect: {text}")

    @staticmethod
    def _error_detail(resp: httpx.Response) -> str:
        try:
            errs = resp.json().get("errors") or []
            return "; ".join(f"{e.get('code')}: {e.get('message')}" for e in errs if isinstance(e, dict))
        except (ValueError, AttributeError):
            return ""

    def _check_status(self, resp: httpx.Response, what: str) -> None:
        if resp.status_code == 200:
            return
        resp.read()
        detail = self._error_detail(resp)
        resp.close()
        suffix = f" ({detail})" if detail else ""
        if resp.status_code == 404:
            raise NotFoundError(f"{self.ref}: {what} not found{suffix}")
        if resp.status_code == 403:
            raise AuthError(f"{self.ref}: access to {what} denied{suffix}")
        raise RegistryError(f"{self.ref}: {what}: HTTP {resp.status_code}{suffix}")

    def _read_capped(self, resp: httpx.Response, what: str) -> bytes:
        limit = self.settings.max_manifest_bytes
        length = resp.headers.get("content-length")
        if length and length.isdigit() and int(length) > limit:
            resp.close()
            raise LimitExceededError(f"{self.ref}: {what} is {length} bytes, more than the {limit} allowed")
        parts: list[bytes] = []
        total = 0
        try:
            for chunk in resp.iter_bytes():
                total += len(chunk)
                if total > limit:
                    raise LimitExceededError(f"{self.ref}: {what} is larger than {limit} bytes")
                parts.append(chunk)
        except httpx.HTTPError as exc:
            raise RegistryError(f"{self.ref}: reading {what}: {exc}") from None
        finally:
            resp.close()
        return b"".join(parts)

    # -- API --
    def manifest(self, reference: str) -> tuple[str, str, dict[str, Any]]:
        """(digest, media type, document) of a manifest or index, digest verified."""
        resp = self._send("GET", f"{self.base}/manifests/{reference}", {"Accept": ACCEPT_MANIFESTS})
        self._check_status(resp, f"manifest {reference}")
        ctype = resp.headers.get("content-type", "").split(";", 1)[0].strip()
        header_digest = resp.headers.get("docker-content-digest", "")
        body = self._read_capped(resp, f"manifest {reference}")
        if ctype in _SCHEMA1:
            raise RegistryError(f"{self.ref}: the registry only offers a schema1 manifest, which is not supported")
        doc = load_json(body, f"{self.ref} manifest")
        media = str(doc.get("mediaType", ""))
        if ctype in INDEX_TYPES or ctype in MANIFEST_TYPES:
            if media and media != ctype:
                raise BadImageError(f"{self.ref}: manifest says {media} but was served as {ctype}")
            media = ctype
        elif media not in INDEX_TYPES and media not in MANIFEST_TYPES:
            raise RegistryError(f"{self.ref}: unexpected manifest Content-Type {ctype or '(none)'}")
        if reference.startswith(("sha256:", "sha512:")):
            digest = check_digest(reference)
            verify_bytes(body, digest, f"{self.ref} manifest")
        else:
            import hashlib

            digest = "sha256:" + hashlib.sha256(body).hexdigest()
            if header_digest and header_digest.startswith("sha256:") and header_digest != digest:
                from garrison.errors import DigestMismatchError

                raise DigestMismatchError(f"{self.ref}: manifest hashes to {digest}, the registry says {header_digest}")
        return digest, media, doc

    def small_blob(self, digest: str, what: str) -> bytes:
        resp = self._send("GET", f"{self.base}/blobs/{check_digest(digest)}", {})
        self._check_status(resp, what)
        return verify_bytes(self._read_capped(resp, what), digest, f"{self.ref} {what}")

    def open_blob(self, info: LayerInfo, progress: ProgressFn | None) -> VerifyingReader:
        resp = self._send("GET", f"{self.base}/blobs/{check_digest(info.digest)}", {})
        self._check_status(resp, f"layer {info.digest}")
        length = resp.headers.get("content-length")
        total = int(length) if length and length.isdigit() else info.size
        return VerifyingReader(
            _ResponseReader(resp, self.ref),
            info.digest,
            f"layer {info.digest}",
            total=total,
            progress=progress,
            on_close=resp.close,
            expected_size=info.size or None,
        )


class _ResponseReader:
    """``read(n)`` over a streamed response, never returning more than asked."""

    def __init__(self, resp: httpx.Response, ref: RegistryRef) -> None:
        self._it = resp.iter_bytes(CHUNK)
        self._buf = b""
        self._ref = ref

    def read(self, n: int = -1) -> bytes:
        if not self._buf:
            try:
                self._buf = next(self._it, b"")
            except httpx.HTTPError as exc:
                raise RegistryError(f"{self._ref}: download interrupted: {exc}") from None
        if n is None or n < 0 or n >= len(self._buf):
            out, self._buf = self._buf, b""
            return out
        out, self._buf = self._buf[:n], self._buf[n:]
        return out


@dataclass
class RegistryLayer:
    info: LayerInfo
    client: RegistryClient

    def open_raw(self, progress: ProgressFn | None = None) -> VerifyingReader:
        return self.client.open_blob(self.info, progress)


@dataclass
class RegistrySource:
    ref: RegistryRef
    settings: Settings
    name: str = ""
    transport: httpx.BaseTransport | None = None

    def open(self, progress: ProgressFn | None = None) -> OpenedImage:
        client = RegistryClient(self.ref, self.settings, self.transport)
        try:
            return self._open(client)
        except BaseException:
            client.close()
            raise

    def _open(self, client: RegistryClient) -> OpenedImage:
        top_digest, media, doc = client.manifest(self.ref.reference)

        def fetch(desc: dict[str, Any]) -> tuple[str, str, dict[str, Any]]:
            return client.manifest(check_digest(desc.get("digest"), "manifest digest"))

        digest, manifest = resolve_manifest(top_digest, media, doc, fetch, self.settings.platform, str(self.ref))
        cdigest = config_digest(manifest, str(self.ref))
        config = parse_config(client.small_blob(cdigest, "image config"), cdigest, str(self.ref))
        infos = layers_from(manifest.get("layers"), config, str(self.ref))
        layers: list[Any] = [RegistryLayer(info, client) for info in infos]
        return image_from_config(
            self.name or str(self.ref),
            SourceKind.REGISTRY,
            config,
            layers,
            digest=digest,
            config_digest=cdigest,
            repo_tags=(f"{self.ref.host}/{self.ref.repository}:{self.ref.tag}",) if self.ref.tag else (),
            closers=(client.close,),
            repo_digests=(f"{self.ref.host}/{self.ref.repository}@{top_digest}",),
        )
