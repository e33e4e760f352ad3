"""Which container a process runs in: the id from its cgroup path, the rest from the Docker API.

``/proc/PID/cgroup`` names the container: ``/docker/<64 hex>`` (cgroup v1 or Docker's cgroupfs driver),
``/system.slice/docker-<64 hex>.scope`` (systemd driver), ``…/kubepods…/cri-containerd-<id>.scope``,
``crio-<id>.scope``, ``libpod-<id>.scope`` (Podman). The image and name come from the Docker Engine API
(``GET /containers/{id}/json`` over the daemon's unix socket, through garrison's one HTTP client seam,
``garrison.net.client``) when a daemon is there; each container is looked up once and cached, a failed
look-up is retried after :data:`RETRY_S`.
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

_ID = re.compile(r"(?:^|[/-])(?:docker-|cri-containerd-|crio-|libpod-)?([0-9a-f]{64})(?:\.scope)?(?:/|$)")
_RUNTIME = (("docker", "docker"), ("cri-containerd", "containerd"), ("crio", "cri-o"), ("libpod", "podman"))
RETRY_S = 30.0


@dataclass(frozen=True, slots=True)
class ContainerInfo:
    """Falco's ``container.*`` fields. ``HOST`` for processes outside any container."""

    full_id: str
    type: str = ""
    name: str = ""
    image: str = ""
    image_repository: str = ""
    image_tag: str = ""
    image_digest: str = ""
    privileged: bool | None = None
    labels: tuple[tuple[str, str], ...] = ()

    @property
    def id(self) -> str:
        return self.full_id[:12] if self.full_id != "host" else "host"

    def label(self, key: str) -> str:
        return next((v for k, v in self.labels if k == key), "")


HOST = ContainerInfo(full_id="host", type="host")


def container_id(cgroup_path: str) -> tuple[str, str]:
    """``(full id, runtime type)`` from a cgroup path; ``("", "")`` outside containers."""
    m = _ID.search(cgroup_path)
    if not m:
        return "", ""
    kind = "docker" if "docker" in cgroup_path else ""
    for marker, name in _RUNTIME:
        if marker in cgroup_path:
            kind = name
            break
    if "kubepods" in cgroup_path and not kind:
        kind = "cri"
    return m.group(1), kind or "docker"


def split_image(image: str) -> tuple[str, str, str]:
    """``repo[:tag][@digest]`` → (repository, tag, digest)."""
    digest = ""
    if "@" in image:
        image, digest = image.split("@", 1)
    repo, tag = image, ""
    slash = image.rfind("/")
    colon = image.rfind(":")
    if colon > slash:
        repo, tag = image[:colon], image[colon + 1 :]
    return repo, tag, digest


def info_from_inspect(full_id: str, kind: str, doc: dict[str, Any]) -> ContainerInfo:
    """A :class:`ContainerInfo` from ``GET /containers/{id}/json``."""
    config = doc.get("Config") or {}
    image = str(config.get("Image") or doc.get("Image") or "")
    repo, tag, digest = split_image(image)
    if not digest and str(doc.get("Image", "")).startswith("sha256:"):
        digest = str(doc["Image"])
    labels = config.get("Labels") or {}
    host = doc.get("HostConfig") or {}
    return ContainerInfo(
        full_id=full_id,
        type=kind,
        name=str(doc.get("Name", "")).lstrip("/"),
        image=image,
        image_repository=repo,
        image_tag=tag or ("latest" if repo and not digest else ""),
        image_digest=digest,
        privileged=bool(host.get("Privileged")) if isinstance(host, dict) else None,
        labels=tuple(sorted((str(k), str(v)) for k, v in labels.items())) if isinstance(labels, dict) else (),
    )


@dataclass
class ContainerResolver:
    """Container id → :class:`ContainerInfo`, asking the Docker daemon once per container."""

    docker_host: str = "unix:///var/run/docker.sock"
    timeout: float = 2.0
    _cache: dict[str, tuple[ContainerInfo, float]] = field(default_factory=dict)
    _client: Any = None
    lookups: int = 0
    failures: int = 0

    def resolve(self, cgroup_path: str) -> ContainerInfo:
        full_id, kind = container_id(cgroup_path)
        if not full_id:
            return HOST
        hit = self._cache.get(full_id)
        now = time.monotonic()
        if hit is not None and (hit[1] == 0.0 or now < hit[1]):
            return hit[0]
        info = self._inspect(full_id, kind) if kind == "docker" else None
        if info is None:
            # No daemon, or it does not know the id (yet): the id alone, asked again after RETRY_S.
            self._cache[full_id] = (ContainerInfo(full_id=full_id, type=kind), now + RETRY_S)
        else:
            self._cache[full_id] = (info, 0.0)
        return self._cache[full_id][0]

    def _inspect(self, full_id: str, kind: str) -> ContainerInfo | None:
        from garrison.errors import UsageError
        from garrison.sources.docker_daemon import socket_path

        try:
            sock = socket_path(self.docker_host)
        except UsageError:
            return None
        if not os.path.exists(sock):
            return None
        import httpx

        from garrison import net
        from garrison.config import Settings

        if self._client is None:
            self._client = net.client(
                Settings(),
                transport=httpx.HTTPTransport(uds=sock),
                base_url="http://docker",
                timeout=httpx.Timeout(self.timeout),
            )
        self.lookups += 1
        try:
            resp = self._client.get(f"/v1.41/containers/{quote(full_id, safe='')}/json")
            doc = resp.json() if resp.status_code == 200 else None
        except (httpx.HTTPError, ValueError):
            doc = None
        if not isinstance(doc, dict):
            self.failures += 1
            return None
        return info_from_inspect(full_id, kind, doc)

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
