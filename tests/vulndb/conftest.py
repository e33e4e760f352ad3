"""Fixtures: a small mirror assembled at test time from real OSV records, served over file://
and over HTTP on loopback (a tiny server that honours If-None-Match with 304)."""

from __future__ import annotations

import hashlib
import shutil
import ssl
import threading
import zipfile
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from tests.support.certs import make_ca, make_leaf
from tests.support.shared import VULNDB

REAL = VULNDB
ECOSYSTEMS = ("Go", "crates.io", "PyPI", "RubyGems", "Packagist", "npm", "Debian", "Alpine")
PER_ECOSYSTEM = 40
#: Packages whose records are always copied (the matching tests' favourite subjects).
INTERESTING = (b'"django"', b'"Django"', b'"openssl"', b'"lodash"', b'"minimist"', b'"jinja2"', b'"Jinja2"')

needs_mirror = pytest.mark.skipif(not (REAL / "osv" / "PyPI" / "all.zip").is_file(), reason="no OSV mirror")


def _pick(zf: zipfile.ZipFile) -> list[str]:
    names = [n for n in zf.namelist() if n.endswith(".json")]
    chosen = names[:PER_ECOSYSTEM]
    extra = 0
    for n in names[PER_ECOSYSTEM:]:
        if extra >= 25:
            break
        data = zf.read(n)
        if b'"withdrawn"' in data or any(k in data for k in INTERESTING):
            chosen.append(n)
            extra += 1
    return chosen


def write_zip(path: Path, members: dict[str, bytes]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)


def read_zip(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as zf:
        return {n: zf.read(n) for n in zf.namelist()}


@pytest.fixture(scope="session")
def subset_members() -> dict[str, dict[str, bytes]]:
    """Ecosystem → {member name: bytes}: a few hundred real records in all."""
    out: dict[str, dict[str, bytes]] = {}
    for eco in ECOSYSTEMS:
        with zipfile.ZipFile(REAL / "osv" / eco / "all.zip") as zf:
            out[eco] = {n: zf.read(n) for n in _pick(zf)}
    return out


@pytest.fixture
def mirror(tmp_path: Path, subset_members: dict[str, dict[str, bytes]]) -> Path:
    """``<tmp>/vulndb/osv`` laid out like the real mirror, with ``<tmp>/vulndb/kev`` beside it."""
    root = tmp_path / "vulndb"
    for eco, members in subset_members.items():
        write_zip(root / "osv" / eco / "all.zip", members)
    (root / "kev").mkdir(parents=True)
    shutil.copyfile(
        REAL / "kev" / "known_exploited_vulnerabilities.json",
        root / "kev" / "known_exploited_vulnerabilities.json",
    )
    return root / "osv"


@dataclass
class MirrorServer:
    """A loopback HTTP server over a directory, with request accounting and fault injection."""

    root: Path
    url: str = ""
    hits: Counter[tuple[str, int]] = field(default_factory=Counter)
    #: Paths that answer 503 this many more times before succeeding.
    fail: Counter[str] = field(default_factory=Counter)
    server: ThreadingHTTPServer | None = None

    def etag(self, path: Path) -> str:
        return '"' + hashlib.sha256(path.read_bytes()).hexdigest()[:20] + '"'

    def count(self, status: int) -> int:
        return sum(n for (_, s), n in self.hits.items() if s == status)


def _handler(state: MirrorServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def _send(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
            state.hits[(self.path, status)] += 1
            self.send_response(status)
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command == "GET":
                self.wfile.write(body)

        def do_GET(self) -> None:
            if state.fail[self.path] > 0:
                state.fail[self.path] -= 1
                self._send(503)
                return
            path = state.root / self.path.lstrip("/")
            if not path.resolve().is_relative_to(state.root.resolve()) or not path.is_file():
                self._send(404)
                return
            etag = state.etag(path)
            if self.headers.get("If-None-Match") == etag:
                self._send(304, headers={"ETag": etag})
                return
            headers = {"ETag": etag, "Last-Modified": formatdate(path.stat().st_mtime, usegmt=True)}
            self._send(200, path.read_bytes(), headers)

    return Handler


def _serve(state: MirrorServer, tls: ssl.SSLContext | None = None) -> Iterator[MirrorServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    state.server = server
    state.url = f"{'https' if tls else 'http'}://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def http_mirror(mirror: Path) -> Iterator[MirrorServer]:
    """Serves ``<tmp>/vulndb`` so that the mirror URL is ``<url>/osv`` and KEV is ``<url>/kev/…``."""
    yield from _serve(MirrorServer(mirror.parent))


@dataclass
class TLSMirror:
    server: MirrorServer
    #: The CA that issued the server's certificate (for ``IP:127.0.0.1``); not in the system store.
    ca_file: Path


@pytest.fixture
def https_mirror(mirror: Path, tmp_path: Path) -> Iterator[TLSMirror]:
    """:func:`http_mirror` over TLS with a certificate from a throw-away CA."""
    ca = make_ca(tmp_path / "pki")
    leaf = make_leaf(ca, tmp_path / "pki", "mirror")
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(leaf.cert_file, leaf.key_file)
    for state in _serve(MirrorServer(mirror.parent), tls):
        yield TLSMirror(state, ca.cert_file)
