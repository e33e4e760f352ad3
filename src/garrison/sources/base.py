"""The ``Source`` seam: every way of getting an image's bytes looks the same to the rest of the pipeline.

A source opens into an :class:`OpenedImage`: the artifact description plus one :class:`LayerBlob` per
layer, bottom first. A layer is consumed as a stream of tar entries (see :mod:`garrison.layers`), so
nothing is ever unpacked to disk.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any, Protocol

from garrison.model import Artifact, LayerInfo

#: Called with (bytes done, bytes total or 0 when unknown) while a blob is read; for progress bars.
ProgressFn = Callable[[int, int], None]


class LayerBlob(Protocol):
    """One layer's content."""

    info: LayerInfo

    def open_raw(self, progress: ProgressFn | None = None) -> IO[bytes]:
        """The stored (possibly compressed) stream. Reading it to EOF verifies ``info.digest``:
        the stream raises :class:`~garrison.errors.DigestMismatchError` at EOF on a mismatch."""
        ...


class TreeLayer(Protocol):
    """A layer that is a directory on disk (``dir:`` sources) rather than a tar stream."""

    info: LayerInfo
    root: str


@dataclass
class OpenedImage:
    """An image ready to be read. Close it to release connections and temporary files."""

    artifact: Artifact
    layers: list[Any]  # LayerBlob | TreeLayer
    config: dict[str, Any] = field(default_factory=dict)
    _closers: list[Callable[[], None]] = field(default_factory=list)

    def close(self) -> None:
        """Release resources; safe to call twice."""
        while self._closers:
            self._closers.pop()()

    def __enter__(self) -> OpenedImage:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Source(Protocol):
    """Something that can be opened into an image."""

    def open(self, progress: ProgressFn | None = None) -> OpenedImage:
        """Resolve the reference and fetch manifests/config (not layers)."""
        ...


def iter_layers(image: OpenedImage) -> Iterator[Any]:
    """Layers bottom first."""
    return iter(image.layers)
