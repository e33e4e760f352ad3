"""``docker-archive:FILE``: the tar ``docker save`` and ``skopeo copy … docker-archive:`` write.

The archive is indexed once (member name → offset and size) and layers are read in place by offset;
nothing is extracted. Both layouts are understood: the classic one (``manifest.json``, ``<id>.json``,
``<id>/layer.tar``) and Docker 25+'s OCI layout inside the tar (``index.json``, ``blobs/sha256/…``,
with the classic names kept as symlinks into ``blobs/``).
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import re
import tarfile
from dataclasses import dataclass
from typing import Any

from garrison.config import Settings
from garrison.errors import BadImageError, NotFoundError
from garrison.model import SourceKind
from garrison.sources.base import OpenedImage, ProgressFn
from garrison.sources.common import (
    FileLayer,
    check_digest,
    config_digest,
    image_from_config,
    layers_from,
    load_json,
    parse_config,
    resolve_manifest,
    verify_bytes,
)

_HEX_NAME = re.compile(r"(?:^|/)(?:blobs/sha256/)?([a-f0-9]{64})(?:\.tar|\.json)?$")


@dataclass(frozen=True)
class _Member:
    offset: int
    size: int
    link: str  # target name for symlinks/hardlinks inside the archive, else ""


def index_archive(path: str) -> dict[str, _Member]:
    """Name → member for every file and link of the archive (headers only; contents are seeked over)."""
    out: dict[str, _Member] = {}
    try:
        with tarfile.open(path, "r:") as tf:
            for m in tf:
                name = posixpath.normpath("/" + m.name).lstrip("/")
                if m.isfile():
                    out[name] = _Member(m.offset_data, m.size, "")
                elif m.issym():
                    target = posixpath.join("/" + posixpath.dirname(name), m.linkname)
                    out[name] = _Member(0, 0, posixpath.normpath(target).lstrip("/"))
                elif m.islnk():
                    out[name] = _Member(0, 0, posixpath.normpath("/" + m.linkname).lstrip("/"))
    except FileNotFoundError:
        raise NotFoundError(f"docker-archive:{path}: no such file") from None
    except (tarfile.TarError, EOFError) as exc:
        raise BadImageError(
            f"docker-archive:{path}: not an uncompressed tar archive ({exc}); "
            "decompress it first if it was saved through gzip"
        ) from None
    return out


class _Archive:
    def __init__(self, path: str, settings: Settings, what: str) -> None:
        self.path = path
        self.settings = settings
        self.what = what
        self.members = index_archive(path)

    def member(self, name: str) -> _Member:
        name = posixpath.normpath("/" + str(name)).lstrip("/")
        for _ in range(8):
            m = self.members.get(name)
            if m is None:
                raise NotFoundError(f"{self.what}: the archive has no member {name!r}")
            if not m.link:
                return m
            name = m.link
        raise BadImageError(f"{self.what}: link loop at member {name!r}")

    def read(self, name: str, what: str) -> bytes:
        m = self.member(name)
        if m.size > self.settings.max_manifest_bytes:
            from garrison.errors import LimitExceededError

            raise LimitExceededError(f"{what} is larger than {self.settings.max_manifest_bytes} bytes")
        with open(self.path, "rb") as fp:
            fp.seek(m.offset)
            data = fp.read(m.size)
        if len(data) != m.size:
            raise BadImageError(f"{what}: the archive is truncated")
        return data

    def has(self, name: str) -> bool:
        return name in self.members


def _digest_from_name(name: str) -> str | None:
    m = _HEX_NAME.search(name)
    return f"sha256:{m.group(1)}" if m else None


@dataclass
class DockerArchiveSource:
    path: str
    settings: Settings
    name: str = ""
    kind: SourceKind = SourceKind.DOCKER_ARCHIVE
    #: ``REPO:TAG`` to pick from an archive holding several images (default: the first).
    tag: str = ""

    def open(self, progress: ProgressFn | None = None) -> OpenedImage:
        what = self.name or f"docker-archive:{self.path}"
        if not os.path.isfile(self.path):
            raise NotFoundError(f"{what}: no such file")
        arc = _Archive(self.path, self.settings, what)
        if arc.has("manifest.json"):
            return self._open_classic(arc, what)
        if arc.has("index.json"):
            return self._open_oci(arc, what)
        raise BadImageError(f"{what}: neither manifest.json nor index.json in the archive")

    def _open_classic(self, arc: _Archive, what: str) -> OpenedImage:
        import json

        try:
            doc = json.loads(arc.read("manifest.json", f"{what} manifest.json"))
        except ValueError as exc:
            raise BadImageError(f"{what}: manifest.json is not valid JSON: {exc}") from None
        if not isinstance(doc, list) or not doc or not all(isinstance(d, dict) for d in doc):
            raise BadImageError(f"{what}: manifest.json is not a list of images")
        entry: dict[str, Any] = self._pick(doc, what)
        config_name = entry.get("Config")
        layer_names = entry.get("Layers")
        if not isinstance(config_name, str) or not isinstance(layer_names, list):
            raise BadImageError(f"{what}: manifest.json entry lacks Config or Layers")
        raw_config = arc.read(config_name, f"{what} config")
        # The classic layout names the config by its digest; an old one may not (then it is what it hashes to).
        cdigest = _digest_from_name(config_name) or "sha256:" + hashlib.sha256(raw_config).hexdigest()
        config = parse_config(raw_config, cdigest, what)
        members: list[tuple[_Member, str | None]] = []
        for i, lname in enumerate(layer_names):
            if not isinstance(lname, str):
                raise BadImageError(f"{what}: layer {i} name is not a string")
            members.append((arc.member(lname), _digest_from_name(self._resolve_name(arc, lname))))
        # A layer stored under a directory name (``<id>/layer.tar``) has no digest of its own: its diff_id.
        descs = [{"digest": stored, "size": m.size} if stored else {"size": m.size} for m, stored in members]
        infos = layers_from(descs, config, what)
        layers = [
            FileLayer(info, self.path, m.offset, m.size, verify=stored)
            for info, (m, stored) in zip(infos, members, strict=True)
        ]
        tags = entry.get("RepoTags") or []
        repo_tags = tuple(str(t) for t in tags) if isinstance(tags, list) else ()
        return image_from_config(what, self.kind, config, layers, config_digest=cdigest, repo_tags=repo_tags)

    def _pick(self, images: list[dict[str, Any]], what: str) -> dict[str, Any]:
        if not self.tag:
            return images[0]
        want = {self.tag, self.tag if ":" in self.tag.rsplit("/", 1)[-1] else f"{self.tag}:latest"}
        for img in images:
            tags = img.get("RepoTags") or []
            if isinstance(tags, list) and want & {str(t) for t in tags}:
                return img
        known = sorted(str(t) for img in images for t in (img.get("RepoTags") or []))
        raise NotFoundError(f"{what}: no image tagged {self.tag!r} (tags: {', '.join(known) or 'none'})")

    @staticmethod
    def _resolve_name(arc: _Archive, name: str) -> str:
        name = posixpath.normpath("/" + name).lstrip("/")
        for _ in range(8):
            m = arc.members.get(name)
            if m is None or not m.link:
                return name
            name = m.link
        return name

    def _open_oci(self, arc: _Archive, what: str) -> OpenedImage:
        cap = self.settings.max_manifest_bytes
        index = load_json(arc.read("index.json", f"{what} index.json"), f"{what} index.json")

        def fetch(desc: dict[str, Any]) -> tuple[str, str, dict[str, Any]]:
            digest = check_digest(desc.get("digest"), f"{what} manifest digest")
            raw = arc.read(f"blobs/{digest.replace(':', '/')}", f"{what} manifest")
            return digest, "", load_json(verify_bytes(raw[: cap + 1], digest, f"{what} manifest"), f"{what} manifest")

        digest, manifest = resolve_manifest("", "", index, fetch, self.settings.platform, what)
        cdigest = config_digest(manifest, what)
        config = parse_config(arc.read(f"blobs/{cdigest.replace(':', '/')}", f"{what} config"), cdigest, what)
        infos = layers_from(manifest.get("layers"), config, what)
        layers = []
        for info in infos:
            m = arc.member(f"blobs/{info.digest.replace(':', '/')}")
            layers.append(FileLayer(info, self.path, m.offset, m.size, verify=info.digest))
        return image_from_config(what, self.kind, config, layers, digest=digest, config_digest=cdigest)
