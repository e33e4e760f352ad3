"""The I/O edge of the advisory database: getting OSV zips and the KEV catalog from a mirror.

Mirrors are laid out like the OSV bucket (``<mirror>/<Ecosystem>/all.zip``) and reached over
``https://``, ``http://`` or ``file://``. HTTP downloads are conditional (the ETag and
Last-Modified of the cached copy are sent back; 304 reuses it), retried by :func:`garrison.net.send`
(connection errors, timeouts, busy answers), over a client of :func:`garrison.net.client` (so ``ca_file``,
``tls_skip_verify`` and proxies apply as they do for registries), streamed into a temporary file under
``<cache_dir>/db/`` and checked to be a readable zip before they replace the cached copy: a
truncated download never reaches the database build.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

import httpx

from garrison import net
from garrison.errors import MirrorError
from garrison.model.ecosystem import mirror_ecosystems
from garrison.progress import Progress
from garrison.vulndb.build import KevSource, SourceFile, now
from garrison.vulndb.kev import parse_kev
from garrison.vulndb.osv import MalformedRecord

#: Ecosystems every mirror is expected to have, and those fetched when present (a 404 is a warning):
#: the ``mirror`` columns of the ecosystem table.
REQUIRED_ECOSYSTEMS, OPTIONAL_ECOSYSTEMS = mirror_ecosystems()
KEV_FILE = "known_exploited_vulnerabilities.json"

TIMEOUT = httpx.Timeout(30.0, connect=10.0)
_CHUNK = 1 << 20


class NotOnMirror(MirrorError):
    """The mirror answered 404 / has no such file (a warning for optional ecosystems)."""


@dataclass(frozen=True, slots=True)
class Fetched:
    """A file from the mirror as it sits in the local cache."""

    path: Path
    url: str
    sha256: str
    fetched_at: str
    etag: str = ""
    last_modified: str = ""
    #: True when the server said 304 and the cached copy was reused.
    not_modified: bool = False


def ecosystem_url(mirror: str, ecosystem: str) -> str:
    return f"{mirror.rstrip('/')}/{ecosystem}/all.zip"


def default_kev_url(mirror: str) -> str:
    """``<mirror>/../kev/known_exploited_vulnerabilities.json`` (how the test mirror is laid out)."""
    base = mirror.rstrip("/").rsplit("/", 1)[0]
    return f"{base}/kev/{KEV_FILE}"


def file_path(url: str) -> Path | None:
    """The local path of a ``file://`` URL or a plain path; None for HTTP(S)."""
    parts = urlsplit(url)
    if parts.scheme == "file":
        return Path(unquote(parts.path))
    if parts.scheme in ("http", "https"):
        return None
    if parts.scheme == "":
        return Path(url)
    raise MirrorError(f"unsupported mirror URL scheme {parts.scheme!r} in {url}")


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(_CHUNK):
            h.update(block)
    return h.hexdigest()


def check_zip(path: Path, url: str) -> None:
    """Reject anything that is not a complete zip (the central directory sits at the end, so a
    truncated download fails here) or that holds no OSV records."""
    try:
        with zipfile.ZipFile(path) as zf:
            if not any(n.endswith(".json") for n in zf.namelist()):
                raise MirrorError(f"{url}: archive holds no .json records")
    except (zipfile.BadZipFile, OSError) as e:
        raise MirrorError(f"{url}: not a valid zip archive ({e}); keeping the previous database") from None


# -- cache bookkeeping -------------------------------------------------------------------------------


def _meta_path(cached: Path) -> Path:
    return cached.with_name(cached.name + ".meta.json")


def _read_meta(cached: Path) -> dict[str, str]:
    try:
        doc = json.loads(_meta_path(cached).read_text())
    except (OSError, ValueError):
        return {}
    return {k: str(v) for k, v in doc.items()} if isinstance(doc, dict) else {}


def _write_meta(cached: Path, fetched: Fetched) -> None:
    doc = {
        "url": fetched.url,
        "sha256": fetched.sha256,
        "fetched_at": fetched.fetched_at,
        "etag": fetched.etag,
        "last_modified": fetched.last_modified,
    }
    _meta_path(cached).write_text(json.dumps(doc, indent=1))


# -- HTTP ------------------------------------------------------------------------------------------


def _get(
    client: httpx.Client, url: str, headers: dict[str, str], dest: Path, progress: Progress, label: str
) -> httpx.Response:
    """GET ``url``, streaming a 200 answer into ``dest``; an answer still busy (5xx) after the retries, or
    no answer at all, is a :class:`MirrorError`."""
    try:
        resp = net.send(client, lambda: client.build_request("GET", url, headers=headers))
    except httpx.TransportError as e:
        last = f"{type(e).__name__}: {e}"
    else:
        try:
            if resp.status_code < 500:
                if resp.status_code == 200:
                    _stream_to(resp, dest, progress, label)
                return resp
            last = f"HTTP {resp.status_code}"
        finally:
            resp.close()
    raise MirrorError(f"cannot fetch {url} after {net.ATTEMPTS} attempts ({last}); keeping the previous database")


def _stream_to(resp: httpx.Response, dest: Path, progress: Progress, label: str) -> None:
    total = int(resp.headers.get("content-length") or 0) or None
    task = progress.task(f"Downloading {label}", total=total)
    try:
        with dest.open("wb") as f:
            for block in resp.iter_bytes(_CHUNK):
                f.write(block)
                task.advance(len(block))
    finally:
        task.done()


def fetch_http(
    client: httpx.Client,
    url: str,
    cached: Path,
    progress: Progress,
    label: str,
    validate: Callable[[Path, str], None] = check_zip,
) -> Fetched:
    """Conditional, retried download of ``url`` into the cache file ``cached``.

    ``validate(path, url)`` vets the downloaded bytes before they replace the cached copy (so a
    bad download is never revalidated by a later 304)."""
    cached.parent.mkdir(parents=True, exist_ok=True)
    meta = _read_meta(cached) if cached.is_file() else {}
    headers: dict[str, str] = {}
    if meta.get("url") == url:
        if meta.get("etag"):
            headers["If-None-Match"] = meta["etag"]
        if meta.get("last_modified"):
            headers["If-Modified-Since"] = meta["last_modified"]
    fd, tmp_name = tempfile.mkstemp(prefix=".download-", dir=cached.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        resp = _get(client, url, headers, tmp, progress, label)
        if resp.status_code == 304 and headers:
            return Fetched(
                cached, url, meta["sha256"], meta["fetched_at"], meta.get("etag", ""),
                meta.get("last_modified", ""), not_modified=True,
            )  # fmt: skip
        if resp.status_code == 404:
            raise NotOnMirror(f"{url}: not found on the mirror (HTTP 404)")
        if resp.status_code != 200:
            raise MirrorError(f"{url}: unexpected HTTP {resp.status_code}; keeping the previous database")
        validate(tmp, url)
        fetched = Fetched(
            cached,
            url,
            sha256_file(tmp),
            now(),
            resp.headers.get("etag", ""),
            resp.headers.get("last-modified", ""),
        )
        os.replace(tmp, cached)
        _write_meta(cached, fetched)
        return fetched
    finally:
        tmp.unlink(missing_ok=True)


# -- public ----------------------------------------------------------------------------------------


def fetch_ecosystem(
    client: httpx.Client, mirror: str, ecosystem: str, cache_dir: Path, progress: Progress
) -> SourceFile:
    """One ecosystem's zip as a :class:`SourceFile`; raises :class:`NotOnMirror` or :class:`MirrorError`."""
    url = ecosystem_url(mirror, ecosystem)
    local = file_path(url)
    if local is not None:
        if not local.is_file():
            raise NotOnMirror(f"{url}: no such file on the mirror")
        check_zip(local, url)
        return SourceFile(ecosystem, local, url, now(), sha256_file(local))
    cached = cache_dir / "db" / "osv" / f"{ecosystem}.zip"
    f = fetch_http(client, url, cached, progress, f"{ecosystem} advisories")
    return SourceFile(ecosystem, f.path, url, f.fetched_at, f.sha256, f.etag, f.last_modified)


def _check_kev(path: Path, url: str) -> None:
    try:
        parse_kev(path.read_bytes())
    except MalformedRecord as e:
        raise MirrorError(f"{url}: {e}") from None


def fetch_kev(client: httpx.Client, url: str, cache_dir: Path, progress: Progress) -> KevSource:
    """The KEV catalog; raises :class:`NotOnMirror` when absent and :class:`MirrorError` when invalid."""
    local = file_path(url)
    if local is None:
        cached = cache_dir / "db" / KEV_FILE
        f = fetch_http(client, url, cached, progress, "KEV catalog", validate=_check_kev)
        local, digest, fetched_at = f.path, f.sha256, f.fetched_at
    else:
        if not local.is_file():
            raise NotOnMirror(f"{url}: no such file")
        digest, fetched_at = sha256_file(local), now()
    try:
        ids = parse_kev(local.read_bytes())
    except MalformedRecord as e:
        raise MirrorError(f"{url}: {e}") from None
    return KevSource(ids, url, fetched_at, digest)
