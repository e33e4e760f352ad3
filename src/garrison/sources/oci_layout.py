"""``oci:DIR[:tag]``: an OCI image layout directory (``oci-layout``, ``index.json``, ``blobs/``).

Blobs are addressed by validated digests only, so a crafted ``index.json`` cannot point outside
``blobs/``; every document is size-capped and digest-verified before it is parsed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from garrison.config import Settings
from garrison.errors import NotFoundError
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
    read_capped,
    resolve_manifest,
    verify_bytes,
)

_REF_NAME = "org.opencontainers.image.ref.name"


def blob_path(root: str, digest: str) -> str:
    alg, _, hexpart = check_digest(digest).partition(":")
    return os.path.join(root, "blobs", alg, hexpart)


def read_blob(root: str, digest: str, limit: int, what: str) -> bytes:
    path = blob_path(root, digest)
    try:
        with open(path, "rb") as fp:
            data = read_capped(fp, limit, what)
    except FileNotFoundError:
        raise NotFoundError(f"{what}: blob {digest} is missing from the layout") from None
    return verify_bytes(data, digest, what)


def _pick(index: dict[str, Any], tag: str, root: str) -> dict[str, Any] | None:
    """The descriptor ``index.json`` names for ``tag`` (or its one image, or ``latest``); None when the
    index itself is to be resolved by platform (a multi-platform layout lists platforms directly)."""
    manifests = [m for m in index.get("manifests") or [] if isinstance(m, dict)]
    if not manifests:
        raise NotFoundError(f"oci:{root}: index.json lists no images")
    if tag:
        for m in manifests:
            ann = m.get("annotations") or {}
            if isinstance(ann, dict) and ann.get(_REF_NAME) == tag:
                return m
        names = sorted(str((m.get("annotations") or {}).get(_REF_NAME)) for m in manifests if m.get("annotations"))
        raise NotFoundError(f"oci:{root}: no image tagged {tag!r} (tags: {', '.join(names) or 'none'})")
    if len(manifests) == 1:
        return manifests[0]
    if all(isinstance(m.get("platform"), dict) for m in manifests):
        return None
    for m in manifests:
        if (m.get("annotations") or {}).get(_REF_NAME) == "latest":
            return m
    raise NotFoundError(f"oci:{root}: the layout holds several images; add :TAG to the reference")


@dataclass
class OCILayoutSource:
    path: str
    tag: str
    settings: Settings
    name: str = ""

    def open(self, progress: ProgressFn | None = None) -> OpenedImage:
        root = self.path
        what = self.name or f"oci:{root}"
        if not os.path.isdir(root):
            raise NotFoundError(f"{what}: no such directory")
        try:
            with open(os.path.join(root, "index.json"), "rb") as fp:
                index = load_json(read_capped(fp, self.settings.max_manifest_bytes, "index.json"), "index.json")
        except FileNotFoundError:
            raise NotFoundError(f"{what}: not an OCI layout (no index.json)") from None
        cap = self.settings.max_manifest_bytes

        def fetch(desc: dict[str, Any]) -> tuple[str, str, dict[str, Any]]:
            digest = check_digest(desc.get("digest"), f"{what} manifest digest")
            return digest, "", load_json(read_blob(root, digest, cap, what), f"{what} manifest")

        desc = _pick(index, self.tag, root)
        start = ("", "", index) if desc is None else fetch(desc)
        digest, manifest = resolve_manifest(*start, fetch, self.settings.platform, what)
        cdigest = config_digest(manifest, what)
        config = parse_config(read_blob(root, cdigest, cap, f"{what} config"), cdigest, what)
        infos = layers_from(manifest.get("layers"), config, what)
        layers = [FileLayer(info, blob_path(root, info.digest), verify=info.digest) for info in infos]
        return image_from_config(what, SourceKind.OCI, config, layers, digest=digest, config_digest=cdigest)
