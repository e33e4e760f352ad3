"""What was scanned: an image (or a root filesystem) and its layers."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class SourceKind(StrEnum):
    """Where the bytes came from; also the prefix a user types (``oci:``, ``docker-archive:`` …)."""

    REGISTRY = "registry"
    OCI = "oci"
    DOCKER_ARCHIVE = "docker-archive"
    DIR = "dir"
    DOCKER = "docker"
    SBOM = "sbom"


@dataclass(frozen=True, slots=True)
class LayerInfo:
    """One layer of an image, bottom (index 0) to top."""

    #: Position in the image, 0 = the bottom layer.
    index: int
    #: Digest of the blob as stored (compressed); equals ``diff_id`` for uncompressed layers.
    digest: str
    #: Digest of the uncompressed tar stream (``rootfs.diff_ids`` in the image config); the cache key.
    diff_id: str
    #: Size of the stored blob in bytes (0 when unknown).
    size: int = 0
    #: The blob's media type as the manifest gives it (``application/vnd.oci.image.layer.v1.tar+gzip``…).
    media_type: str = ""
    #: The history ``created_by`` of the step that made the layer, when the config says.
    created_by: str = ""


@dataclass(frozen=True, slots=True)
class Artifact:
    """The scanned thing, as identified to the user and in reports."""

    #: What the user typed (``oci:build/app:latest``, ``127.0.0.1:5000/app:1``…).
    name: str
    #: Which kind of source it was read from.
    kind: SourceKind
    #: Manifest digest (``sha256:…``) when the source has one; the image identity in reports.
    digest: str = ""
    #: Digest of the image config blob (the "image id").
    config_digest: str = ""
    #: CPU architecture from the image config (``amd64``, ``arm64``); "" when unknown.
    architecture: str = ""
    #: Operating system from the image config (``linux``).
    os: str = ""
    #: The layers, bottom first (empty for ``dir:`` and SBOM sources).
    layers: tuple[LayerInfo, ...] = ()
    #: ``repository:tag`` names the source knows the image by (docker save, the daemon).
    repo_tags: tuple[str, ...] = ()
    #: ``repository@sha256:…`` names the source knows the image by.
    repo_digests: tuple[str, ...] = ()
    #: The image config's labels.
    labels: dict[str, str] = field(default_factory=dict)
