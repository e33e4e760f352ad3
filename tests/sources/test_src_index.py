"""common.resolve_manifest: the one image-index resolution every source (registry, OCI layout, docker archive)
goes through, fed here with documents by digest the way a source's fetch serves them."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest

from garrison.errors import BadImageError, NotFoundError
from garrison.sources.common import DOCKER_LIST, OCI_INDEX, OCI_MANIFEST, resolve_manifest


def _digest(doc: dict[str, Any]) -> str:
    return "sha256:" + hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()


MANIFEST = {"mediaType": OCI_MANIFEST, "config": {"digest": "sha256:" + "c" * 64}, "layers": []}
ARM = {**MANIFEST, "annotations": {"arch": "arm64"}}


class Store:
    """Documents by digest, and the descriptors that name them; counts fetches."""

    def __init__(self) -> None:
        self.docs: dict[str, dict[str, Any]] = {}
        self.fetched: list[str] = []

    def desc(self, doc: dict[str, Any], platform: str = "") -> dict[str, Any]:
        digest = _digest(doc)
        self.docs[digest] = doc
        out: dict[str, Any] = {"digest": digest, "mediaType": doc.get("mediaType", "")}
        if platform:
            os_, arch, *variant = platform.split("/")
            out["platform"] = {"os": os_, "architecture": arch, **({"variant": variant[0]} if variant else {})}
        return out

    def fetch(self, desc: dict[str, Any]) -> tuple[str, str, dict[str, Any]]:
        self.fetched.append(desc["digest"])
        return desc["digest"], "", self.docs[desc["digest"]]


def index(*descs: dict[str, Any], media: str = OCI_INDEX) -> dict[str, Any]:
    return {"mediaType": media, "manifests": list(descs)}


def test_platform_is_selected_through_nested_indexes() -> None:
    s = Store()
    inner = index(s.desc(MANIFEST, "linux/amd64"), s.desc(ARM, "linux/arm64/v8"), media=DOCKER_LIST)
    top = index(s.desc(inner))  # one entry without a platform: followed
    digest, doc = resolve_manifest("", "", top, s.fetch, "linux/arm64", "t")
    assert doc is ARM and digest == _digest(ARM) and len(s.fetched) == 2
    assert resolve_manifest("", "", top, s.fetch, "linux/amd64", "t")[1] is MANIFEST


def test_a_manifest_resolves_to_itself_and_shape_decides_without_a_media_type() -> None:
    s = Store()
    assert resolve_manifest("sha256:" + "a" * 64, OCI_MANIFEST, MANIFEST, s.fetch, "linux/amd64", "t") == (
        "sha256:" + "a" * 64,
        MANIFEST,
    )
    untyped = {"manifests": [s.desc(MANIFEST, "linux/amd64")]}
    assert resolve_manifest("", "", untyped, s.fetch, "linux/amd64", "t")[1] is MANIFEST
    assert s.fetched == [_digest(MANIFEST)]


def test_refusals() -> None:
    s = Store()
    with pytest.raises(NotFoundError, match="no manifest for platform linux/s390x"):
        resolve_manifest("", "", index(s.desc(MANIFEST, "linux/amd64")), s.fetch, "linux/s390x", "t")
    loop: dict[str, Any] = index()
    loop["manifests"] = [{"digest": "sha256:" + "d" * 64}]
    s.docs["sha256:" + "d" * 64] = loop  # an index naming itself
    with pytest.raises(BadImageError, match="nested too deeply"):
        resolve_manifest("", "", loop, s.fetch, "linux/amd64", "t")
    odd = {"mediaType": "application/vnd.example+json", "layers": []}
    with pytest.raises(BadImageError, match="neither an image manifest nor an index"):
        resolve_manifest("", "", index(s.desc(odd)), s.fetch, "linux/amd64", "t")
