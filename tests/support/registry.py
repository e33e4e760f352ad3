"""Real OCI registries on loopback: Debian's ``docker-registry`` (distribution 2.8) in four setups.

Why the real thing: distribution has quirks (Accept negotiation, schema1 fallback, token scopes) that a
hand-written fake would not reproduce. Each registry gets a free port, its own storage directory and is
stopped by its PID. ``push`` uses ``skopeo copy`` so the content is uploaded by an independent client.

Setups (``kind``):

``plain``     no auth, plain HTTP
``htpasswd``  Basic auth (bcrypt htpasswd), plain HTTP — distribution 2.8 accepts this without TLS
``token``     Bearer token auth against :mod:`tests.support.tokenserver`, plain HTTP
``tls``       no auth, HTTPS with a cert for IP 127.0.0.1 issued by a throw-away CA (``ca_file``)

``notify_url`` adds a ``notifications`` endpoint (scan-on-push work): distribution POSTs events there.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import ssl
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import httpx
import yaml
from tests.support.certs import make_ca, make_leaf
from tests.support.procs import die_with_parent
from tests.support.tokenserver import TokenServer

RegistryKind = Literal["plain", "htpasswd", "token", "tls"]
USERNAME = "alice"
PASSWORD = "s3cret"
#: The Accept list a correct client sends (distribution 2.8 negotiates on it; see ENVIRONMENT.md).
MANIFEST_ACCEPT = ", ".join(
    [
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
    ]
)


class RegistryUnavailable(RuntimeError):
    """The registry binary is missing or would not start (fixtures turn this into a skip)."""


def registry_binary() -> str | None:
    return shutil.which("docker-registry")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Registry:
    """A running registry. ``host`` is ``127.0.0.1:PORT``; credentials are ``None`` when auth is off."""

    kind: RegistryKind
    host: str
    scheme: str
    username: str | None
    password: str | None
    ca_file: Path | None
    workdir: Path
    config_file: Path
    log_file: Path
    process: subprocess.Popen[bytes] | None = None
    token_server: TokenServer | None = None
    pushed: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}"

    @property
    def cert_dir(self) -> Path | None:
        """A containers-style cert dir (``ca.crt``) for skopeo's ``--dest-cert-dir``/``--src-cert-dir``."""
        return self.ca_file.parent if self.ca_file else None

    def ref(self, repo_tag: str) -> str:
        """``127.0.0.1:PORT/repo:tag`` — the reference a scanner would be given."""
        return f"{self.host}/{repo_tag}"

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def push(self, oci_ref: str, repo_tag: str, *, manifest_format: str | None = None, all_images: bool = False) -> str:
        """Copy an image (e.g. ``oci:DIR:TAG`` or ``docker-archive:PATH``) to ``repo_tag``; returns the
        manifest digest as stored by the registry.

        ``manifest_format="v2s2"`` converts to Docker schema 2 media types (``"oci"`` forces OCI);
        ``all_images=True`` pushes a whole image index (multi-arch) rather than one platform.
        """
        digest_file = self.workdir / f"digest-{len(self.pushed)}"
        cmd = ["skopeo", "copy", "--quiet", "--digestfile", str(digest_file)]
        if manifest_format:
            cmd += ["--format", manifest_format]
        if all_images:
            cmd += ["--all"]
        if self.kind == "tls":
            cmd += ["--dest-cert-dir", str(self.cert_dir), "--dest-tls-verify=true"]
        else:
            cmd += ["--dest-tls-verify=false"]
        if self.username:
            cmd += ["--dest-creds", f"{self.username}:{self.password}"]
        cmd += [oci_ref, f"docker://{self.host}/{repo_tag}"]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        if proc.returncode != 0:
            raise RuntimeError(f"skopeo push to {self.kind} registry failed: {proc.stderr}\n{self.log_tail()}")
        digest = digest_file.read_text().strip()
        self.pushed[repo_tag] = digest
        return digest

    def client(self, **kw: Any) -> httpx.Client:
        """An httpx client that trusts this registry's CA (no auth handling: tests do that themselves)."""
        return httpx.Client(base_url=self.url, verify=self.ssl_context(), **kw)

    def ssl_context(self) -> ssl.SSLContext:
        """A client TLS context trusting this registry's CA (system CAs when plain HTTP)."""
        return ssl.create_default_context(cafile=str(self.ca_file) if self.ca_file else None)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
        if self.token_server is not None:
            self.token_server.stop()


def _notifications(url: str, headers: dict[str, list[str]] | None) -> dict[str, Any]:
    endpoint: dict[str, Any] = {
        "name": "garrison",
        "url": url,
        "timeout": "2s",
        "threshold": 3,
        "backoff": "1s",
        "ignoredmediatypes": ["application/octet-stream"],
    }
    if headers:
        endpoint["headers"] = headers
    return {"events": {"includereferences": True}, "endpoints": [endpoint]}


def start_registry(
    workdir: Path,
    kind: RegistryKind = "plain",
    *,
    notify_url: str | None = None,
    notify_headers: dict[str, list[str]] | None = None,
    timeout: float = 20.0,
) -> Registry:
    """Start ``docker-registry serve`` in ``workdir`` and wait until ``/v2/`` answers."""
    binary = registry_binary()
    if binary is None:
        raise RegistryUnavailable("docker-registry is not installed (apt-get install docker-registry)")
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    host = f"127.0.0.1:{port}"
    config: dict[str, Any] = {
        "version": 0.1,
        "log": {"level": "info", "accesslog": {"disabled": True}},
        "storage": {"filesystem": {"rootdirectory": str(workdir / "data")}, "delete": {"enabled": True}},
        "http": {"addr": host, "secret": "garrison-test-secret"},
    }
    username = password = None
    ca_file = None
    token_server = None
    if kind == "htpasswd":
        htpasswd = subprocess.run(
            ["htpasswd", "-Bbn", USERNAME, PASSWORD], capture_output=True, text=True, check=True
        ).stdout
        (workdir / "htpasswd").write_text(htpasswd)
        config["auth"] = {"htpasswd": {"realm": "garrison-test", "path": str(workdir / "htpasswd")}}
        username, password = USERNAME, PASSWORD
    elif kind == "token":
        ca = make_ca(workdir / "token-ca")
        signer = make_leaf(ca, workdir / "token-ca", "signer", cn="garrison token signer")
        token_server = TokenServer(signer, users={USERNAME: PASSWORD}).start()
        config["auth"] = {
            "token": {
                "realm": token_server.realm,
                "service": token_server.service,
                "issuer": token_server.issuer,
                "rootcertbundle": str(ca.cert_file),
            }
        }
        username, password = USERNAME, PASSWORD
    elif kind == "tls":
        ca = make_ca(workdir / "tls")
        leaf = make_leaf(ca, workdir / "tls", "server")
        config["http"]["tls"] = {"certificate": str(leaf.cert_file), "key": str(leaf.key_file)}
        # A directory holding only the CA certificate: skopeo's --*-cert-dir treats a *.key as a client key.
        ca_file = workdir / "cert-dir" / "ca.crt"
        ca_file.parent.mkdir()
        shutil.copyfile(ca.cert_file, ca_file)
    elif kind != "plain":
        raise ValueError(f"unknown registry kind {kind!r}")
    if notify_url:
        config["notifications"] = _notifications(notify_url, notify_headers)
    config_file = workdir / "config.yml"
    config_file.write_text(yaml.safe_dump(config, sort_keys=False))
    log_file = workdir / "registry.log"
    scheme = "https" if kind == "tls" else "http"
    reg = Registry(
        kind,
        host,
        scheme,
        username,
        password,
        ca_file,
        workdir,
        config_file,
        log_file,
        token_server=token_server,
    )
    with open(log_file, "wb") as log:
        reg.process = subprocess.Popen(
            [binary, "serve", str(config_file)],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            preexec_fn=die_with_parent,
            cwd=workdir,
        )
    try:
        _wait_ready(reg, timeout)
    except BaseException:
        reg.stop()
        raise
    return reg


def _wait_ready(reg: Registry, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    with reg.client(timeout=2.0) as client:
        while time.monotonic() < deadline:
            if reg.process is not None and reg.process.poll() is not None:
                raise RegistryUnavailable(f"docker-registry exited ({reg.process.returncode}):\n{reg.log_tail()}")
            with contextlib.suppress(httpx.TransportError):
                if client.get("/v2/").status_code in (200, 401):
                    return
            time.sleep(0.1)
    raise RegistryUnavailable(f"docker-registry on {reg.host} not ready after {timeout}s:\n{reg.log_tail()}")


def _parse_challenge(header: str) -> dict[str, str]:
    """``Bearer realm="…",service="…",scope="…"`` → dict (values never contain quotes here)."""
    _, _, params = header.partition(" ")
    out: dict[str, str] = {}
    for part in params.split('",'):
        key, _, value = part.partition("=")
        out[key.strip()] = value.strip().strip('"')
    return out


def fetch_manifest(
    reg: Registry, repo: str, reference: str, *, accept: str = MANIFEST_ACCEPT, method: str = "GET"
) -> httpx.Response:
    """An independent, minimal manifest fetch that does the auth dance for every setup (Basic for
    htpasswd, token exchange for token). For tests that check what a registry really serves."""
    path = f"/v2/{repo}/manifests/{reference}"
    headers = {"Accept": accept}
    with reg.client(timeout=30.0) as client:
        resp = client.request(method, path, headers=headers)
        if resp.status_code != 401 or reg.username is None:
            return resp
        challenge = resp.headers.get("WWW-Authenticate", "")
        creds = (reg.username, reg.password or "")
        if challenge.startswith("Basic"):
            return client.request(method, path, headers=headers, auth=creds)
        params = _parse_challenge(challenge)
        token_resp = httpx.get(
            params["realm"],
            params={"service": params["service"], "scope": params["scope"]},
            auth=creds,
            timeout=30.0,
        )
        token_resp.raise_for_status()
        token = token_resp.json()["token"]
        return client.request(method, path, headers={**headers, "Authorization": f"Bearer {token}"})
