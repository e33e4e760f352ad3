"""``docker:IMAGE``: an image held by a local Docker daemon, read through the Engine API.

The image is first inspected (``GET /images/{name}/json``): that gives the layer diff_ids, so a warm
scan whose layers are all cached never exports anything. Only when a layer is actually read is
``GET /images/{name}/get`` (a ``docker save`` archive) streamed into a temporary file under the cache
directory (the archive is read by offset, which a socket stream cannot do), opened with
:mod:`garrison.sources.docker_archive`, and deleted when the image is closed. Only unix sockets are
supported: a TCP daemon would need TLS client certificates that garrison does not manage.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import threading
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx

from garrison import net
from garrison.config import Settings
from garrison.errors import BadImageError, NotFoundError, SourceError, UsageError
from garrison.model import LayerInfo, SourceKind
from garrison.sources.base import OpenedImage, ProgressFn
from garrison.sources.common import CHUNK, image_from_config, layers_from

_API = "v1.41"


def socket_path(docker_host: str) -> str:
    if docker_host.startswith("unix://"):
        return docker_host[len("unix://") :]
    if docker_host.startswith("/"):
        return docker_host
    raise UsageError(f"docker host {docker_host!r}: only unix:// sockets are supported")


def _client(sock: str, settings: Settings) -> httpx.Client:
    """The Engine API over the unix socket (an export streams for as long as the image takes)."""
    return net.client(
        settings,
        transport=httpx.HTTPTransport(uds=sock),
        base_url="http://docker",
        timeout=httpx.Timeout(300.0, connect=10.0),
    )


def image_config(inspect: dict[str, Any]) -> dict[str, Any]:
    """The image config an image inspect answer carries (``Architecture``, ``Os``, ``Config``, ``RootFS``),
    in the OCI config's shape, so it is read like every other source's config."""
    rootfs = inspect.get("RootFS") if isinstance(inspect.get("RootFS"), dict) else {}
    layers = rootfs.get("Layers") if isinstance(rootfs, dict) else None
    return {
        "architecture": inspect.get("Architecture", ""),
        "os": inspect.get("Os", ""),
        "config": inspect.get("Config") or {},
        "rootfs": {"type": "layers", "diff_ids": layers if isinstance(layers, list) else []},
    }


@dataclass
class _Export:
    """The ``docker save`` archive, fetched at most once and only when a layer must be read."""

    image: str
    sock: str
    settings: Settings
    what: str
    lock: threading.Lock = field(default_factory=threading.Lock)
    path: str = ""
    layers: list[Any] = field(default_factory=list)

    def layer(self, index: int, expected: LayerInfo) -> Any:
        with self.lock:
            if not self.path:
                self._fetch()
        if index >= len(self.layers) or self.layers[index].info.diff_id != expected.diff_id:
            raise BadImageError(f"{self.what}: the exported archive does not match the inspected image")
        return self.layers[index]

    def _fetch(self) -> None:
        from garrison.sources.docker_archive import DockerArchiveSource

        tmp_dir = self.settings.cache_dir / "tmp"
        tmp_dir.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix="docker-save-", suffix=".tar", dir=tmp_dir)
        self.path = tmp
        with os.fdopen(fd, "wb") as out, _client(self.sock, self.settings) as client:
            try:
                with client.stream("GET", f"/{_API}/images/{quote(self.image, safe='')}/get") as resp:
                    if resp.status_code != 200:
                        resp.read()
                        raise SourceError(f"{self.what}: export failed: {resp.status_code} {resp.text[:200]}")
                    for chunk in resp.iter_bytes(CHUNK):
                        out.write(chunk)
            except httpx.HTTPError as exc:
                raise SourceError(f"{self.what}: exporting from the Docker daemon: {exc}") from None
        opened = DockerArchiveSource(tmp, self.settings, name=self.what, kind=SourceKind.DOCKER).open()
        self.layers = list(opened.layers)

    def close(self) -> None:
        if self.path:
            with contextlib.suppress(OSError):
                os.unlink(self.path)


@dataclass
class DaemonLayer:
    info: LayerInfo
    export: _Export

    def open_raw(self, progress: ProgressFn | None = None) -> Any:
        return self.export.layer(self.info.index, self.info).open_raw(progress)


@dataclass
class DockerDaemonSource:
    image: str
    settings: Settings
    name: str = ""

    def open(self, progress: ProgressFn | None = None) -> OpenedImage:
        sock = socket_path(self.settings.docker_host)
        what = self.name or f"docker:{self.image}"
        if not os.path.exists(sock):
            raise SourceError(f"{what}: no Docker daemon socket at {sock} (set --docker-host)")
        try:
            with _client(sock, self.settings) as client:
                resp = client.get(f"/{_API}/images/{quote(self.image, safe='')}/json")
        except httpx.HTTPError as exc:
            raise SourceError(f"{what}: talking to the Docker daemon at {sock}: {exc}") from None
        if resp.status_code == 404:
            raise NotFoundError(f"{what}: no such image in the Docker daemon")
        if resp.status_code != 200:
            raise SourceError(f"{what}: Docker daemon answered {resp.status_code}: {resp.text[:200]}")
        try:
            doc = resp.json()
        except ValueError:
            raise SourceError(f"{what}: the Docker daemon answered non-JSON") from None
        if not isinstance(doc, dict):
            raise SourceError(f"{what}: the Docker daemon answered something else than an image")
        config = image_config(doc)
        # The daemon keeps layers uncompressed: each is addressed by its diff_id until exported.
        infos = layers_from([{} for _ in config["rootfs"]["diff_ids"]], config, what)
        export = _Export(self.image, sock, self.settings, what)
        layers: list[Any] = [DaemonLayer(info, export) for info in infos]
        return image_from_config(
            what,
            SourceKind.DOCKER,
            config,
            layers,
            config_digest=str(doc.get("Id", "")),
            closers=(export.close,),
            repo_tags=tuple(str(t) for t in doc.get("RepoTags") or ()),
            repo_digests=tuple(str(d) for d in doc.get("RepoDigests") or ()),
        )
