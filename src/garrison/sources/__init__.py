"""Image sources: where an image's bytes come from. :func:`open_source` is the one entry point."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from garrison.config import Settings
    from garrison.sources.base import Source


def open_source(ref: str, settings: Settings) -> Source:
    """A :class:`~garrison.sources.base.Source` for ``ref``; nothing is read until ``.open()``.

    Imports are local so that using one kind of source never loads the others (httpx for a dir scan).
    """
    from garrison.model import SourceKind
    from garrison.sources.reference import parse_reference

    parsed = parse_reference(ref)
    if parsed.kind is SourceKind.OCI:
        from garrison.sources.oci_layout import OCILayoutSource

        return OCILayoutSource(parsed.path, parsed.tag, settings, name=ref)
    if parsed.kind is SourceKind.DOCKER_ARCHIVE:
        from garrison.sources.docker_archive import DockerArchiveSource

        return DockerArchiveSource(parsed.path, settings, name=ref, tag=parsed.tag)
    if parsed.kind is SourceKind.DIR:
        from garrison.sources.rootfs import RootfsSource

        return RootfsSource(parsed.path, settings, name=ref)
    if parsed.kind is SourceKind.DOCKER:
        from garrison.sources.docker_daemon import DockerDaemonSource

        return DockerDaemonSource(parsed.image, settings, name=ref)
    from garrison.sources.registry import RegistrySource

    assert parsed.registry is not None
    return RegistrySource(parsed.registry, settings, name=ref)
