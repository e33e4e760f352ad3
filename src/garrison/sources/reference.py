"""Parse what users type as an image reference.

``oci:DIR[:tag]``, ``docker-archive:FILE``, ``dir:ROOTFS``, ``docker:IMAGE`` and registry references
``[host[:port]/]repo[:tag][@digest]`` (Docker Hub rules: no host means ``docker.io``, reached at
``registry-1.docker.io``, and one-part names live under ``library/``).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from garrison.errors import UsageError
from garrison.model import SourceKind

DOCKER_HUB = "docker.io"
DOCKER_HUB_API = "registry-1.docker.io"

# Registry reference syntax, matched with ``re.match`` (its compiled-pattern cache): only registry
# references need them, and compiling them up front was a measurable part of every start.
_COMPONENT = r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$"
_TAG = r"^[\w][\w.-]{0,127}$"
_DIGEST = r"^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-fA-F0-9]{32,}$"
_HOST = r"^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9-]+)*|\[[0-9a-fA-F:]+\])(?::[0-9]+)?$"


@dataclass(frozen=True)
class RegistryRef:
    """A parsed registry reference. ``host`` is as the user means it (``docker.io``)."""

    host: str
    repository: str
    tag: str = ""
    digest: str = ""

    @property
    def api_host(self) -> str:
        """Where the registry API actually lives (Docker Hub's differs from its name)."""
        return DOCKER_HUB_API if self.host == DOCKER_HUB else self.host

    @property
    def reference(self) -> str:
        """What goes after ``/manifests/``: the digest when pinned, else the tag."""
        return self.digest or self.tag or "latest"

    def __str__(self) -> str:
        out = f"{self.host}/{self.repository}"
        if self.tag:
            out += f":{self.tag}"
        if self.digest:
            out += f"@{self.digest}"
        return out


@dataclass(frozen=True)
class SourceRef:
    """A parsed reference of any kind. ``path`` for local sources, ``registry`` for registries,
    ``image`` for the Docker daemon (the name as the daemon knows it)."""

    kind: SourceKind
    text: str
    path: str = ""
    tag: str = ""
    image: str = ""
    registry: RegistryRef | None = None


def parse_registry_ref(text: str) -> RegistryRef:
    """``[host[:port]/]repo[:tag][@digest]`` → :class:`RegistryRef` (``UsageError`` when malformed)."""
    s = text.strip()
    if s.startswith("docker://"):
        s = s[len("docker://") :]
    if not s:
        raise UsageError("empty image reference")
    name, _, digest = s.partition("@")
    if digest and not re.match(_DIGEST, digest):
        raise UsageError(f"invalid digest in image reference {text!r}")
    host = DOCKER_HUB
    first, slash, rest = name.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost" or first.startswith("[")):
        host, name = first, rest
        if not re.match(_HOST, host):
            raise UsageError(f"invalid registry host {host!r} in {text!r}")
    tag = ""
    last_slash = name.rfind("/")
    colon = name.rfind(":")
    if colon > last_slash:
        name, tag = name[:colon], name[colon + 1 :]
        if not re.match(_TAG, tag):
            raise UsageError(f"invalid tag {tag!r} in image reference {text!r}")
    if host in (DOCKER_HUB, "index.docker.io"):
        host = DOCKER_HUB
        if "/" not in name:
            name = f"library/{name}"
    for part in name.split("/"):
        if not re.match(_COMPONENT, part):
            raise UsageError(f"invalid repository name {name!r} in image reference {text!r}")
    if not tag and not digest:
        tag = "latest"
    return RegistryRef(host=host, repository=name, tag=tag, digest=digest.lower() if digest else "")


def _split_oci(rest: str) -> tuple[str, str]:
    """``DIR[:tag]``; a path that exists as a directory wins over a tag split."""
    if os.path.isdir(rest) or ":" not in rest:
        return rest, ""
    path, _, tag = rest.rpartition(":")
    if "/" in tag or not tag:
        return rest, ""
    return path, tag


def _split_archive(rest: str) -> tuple[str, str]:
    """``FILE[:REPO:TAG]`` (skopeo's syntax): the shortest prefix that is an existing file is the path."""
    if os.path.exists(rest) or ":" not in rest:
        return rest, ""
    for i, ch in enumerate(rest):
        if ch == ":" and os.path.isfile(rest[:i]):
            return rest[:i], rest[i + 1 :]
    return rest, ""


def parse_reference(text: str) -> SourceRef:
    """Any reference garrison accepts → :class:`SourceRef`."""
    if not text or not text.strip():
        raise UsageError("empty image reference")
    if text.startswith("oci:"):
        path, tag = _split_oci(text[4:])
        if not path:
            raise UsageError("oci: needs a directory: oci:DIR[:TAG]")
        return SourceRef(SourceKind.OCI, text, path=path, tag=tag)
    if text.startswith("docker-archive:"):
        path, tag = _split_archive(text[len("docker-archive:") :])
        if not path:
            raise UsageError("docker-archive: needs a file: docker-archive:FILE[:REPO:TAG]")
        return SourceRef(SourceKind.DOCKER_ARCHIVE, text, path=path, tag=tag)
    if text.startswith("dir:"):
        if not text[4:]:
            raise UsageError("dir: needs a directory: dir:PATH")
        return SourceRef(SourceKind.DIR, text, path=text[4:])
    if text.startswith("docker:") and not text.startswith("docker://"):
        image = text[len("docker:") :]
        if not image:
            raise UsageError("docker: needs an image name: docker:IMAGE")
        return SourceRef(SourceKind.DOCKER, text, image=image)
    hint = _local_path_hint(text)
    if hint:
        raise UsageError(hint)
    return SourceRef(SourceKind.REGISTRY, text, registry=parse_registry_ref(text))


def _local_path_hint(text: str) -> str:
    """A message for a local path given without its ``docker-archive:``/``oci:``/``dir:`` prefix, which
    would otherwise be read as a registry reference; ``""`` when ``text`` does not look like one."""
    looks_local = text.startswith(("/", "./", "../", "~")) or text.endswith((".tar", ".tar.gz", ".tgz"))
    path = os.path.expanduser(text)
    if not looks_local and not (os.path.exists(path) and "/" in text):
        return ""
    if os.path.isdir(path):
        prefix = "oci:" if os.path.isfile(os.path.join(path, "oci-layout")) else "dir:"
    elif os.path.exists(path):
        prefix = "docker-archive:"
    else:
        return (
            f"{text!r} looks like a local path, but nothing is there "
            "(local sources are written docker-archive:FILE, oci:DIR[:TAG] or dir:PATH)"
        )
    return f"{text!r} is a local path, not an image reference: did you mean {prefix}{text}?"
