"""``oci:DIR[:tag]``: an OCI image layout directory (``oci-layout``, ``index.json``, ``blobs/``).

Blobs are addressed by validated digests only, so a crafted ``index.json`` cannot point outside
``blobs/``; every document is size-capped and digest-verified before it is parsed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from garrison.config import Settings
from garrison.errors import BadImageError, NotFoundError
from garrison.model import SourceKind
from garrison.sources.base import OpenedImage, ProgressFn
from garrison.sources.common import (
    INDEX_TYPES,
    FileLayer,
    check_digest,
    image_from_config,
    layers_from,
    load_json,
    read_capped,
    select_manifest,
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


def _pick(index: dict[str, Any], tag: str, root: str) -> dict[str, Any]:
    manifests = [m for m in index.get("manifests") or [] if isinstance(m, dict)]
    if not manifests:
        raise NotFoundError(f"oci:{root}: index.json lists no images")
    if tag:
        for m in manifests:
            ann = m.get("annotations") or {}
            if isinstance(ann, dict) and ann.get(_REF_NAME) == tag:
                return m
        names = sorted(
            str((m.get("annotations") or {}).get(_REF_NAME)) for m in manifests if m.get("annotations")
        )
        raise NotFoundError(f"oci:{root}: no image tagged {tag!r} (tags: {', '.join(names) or 'none'})")
    if len(manifests) == 1:
        return manifests[0]
    # Several images and no tag: a multi-platform layout lists platforms directly in index.json.
    if all(isinstance(m.get("platform"), dict) for m in manifests):
        return {"mediaType": "application/vnd.oci.image.index.v1+json", "_inline": index}
    for m in manifests:
        if (m.get("annotations") or {}).get(_REF_NAME) == "latest":
            return m
    raise NotFoundError(f"oci:{root}: the layout holds several images; add :TAG to the reference")


def resolve_manifest(
    root: str, desc: dict[str, Any], settings: Settings, what: str
) -> tuple[str, dict[str, Any]]:
    """Follow image indexes (platform selection) down to one image manifest: (digest, manifest)."""
    for _ in range(4):  # indexes may nest; a loop deeper than this is a crafted input
        if "_inline" in desc:
            doc: dict[str, Any] = desc["_inline"]
            digest = ""
        else:
            digest = check_digest(desc.get("digest"), f"{what} manifest digest")
            doc = load_json(read_blob(root, digest, settings.max_manifest_bytes, what), f"{what} manifest")
        media = str(doc.get("mediaType") or desc.get("mediaType") or "")
        if media in INDEX_TYPES or ("manifests" in doc and "layers" not in doc):
            desc = select_manifest(doc, settings.platform, what)
            continue
        if "layers" not in doc or "config" not in doc:
            raise BadImageError(f"{what}: {digest or 'index'} is neither an image manifest nor an index")
        return digest, doc
    raise BadImageError(f"{what}: image indexes nested too deeply")


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
                index = load_json(
                    read_capped(fp, self.settings.max_manifest_bytes, "index.json"), "index.json"
                )
        except FileNotFoundError:
            raise NotFoundError(f"{what}: not an OCI layout (no index.json)") from None
        desc = _pick(index, self.tag, root)
        digest, manifest = resolve_manifest(root, desc, self.settings, what)
        cdesc = manifest.get("config")
        if not isinstance(cdesc, dict):
            raise BadImageError(f"{what}: manifest without a config descriptor")
        config_digest = check_digest(cdesc.get("digest"), f"{what} config digest")
        config = load_json(
            read_blob(root, config_digest, self.settings.max_manifest_bytes, f"{what} config"),
            f"{what} config",
        )
        infos = layers_from(manifest, config, what)
        layers = [FileLayer(info, blob_path(root, info.digest), verify=info.digest) for info in infos]
        return image_from_config(what, SourceKind.OCI, config, layers, digest=digest, config_digest=config_digest)
