"""The analyzer contract.

An analyzer is declared, not written as a lifecycle: a name, a version, the paths it wants and a pure
parse function from one file's bytes to packages. The walker asks every analyzer ``wants()`` for each
file of a layer, reads the wanted files once, and calls ``analyze()``. Results are cached per layer
(keyed by the layer's diff_id plus every analyzer's name and version), so bumping ``version`` after a
parser change invalidates stale cache entries.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from garrison.model import OSInfo, Package

MiB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class FileInput:
    """One file handed to an analyzer. ``path`` is relative to the image root, without a leading '/'."""

    path: str
    content: bytes
    mode: int = 0o644
    size: int = 0


@dataclass(frozen=True, slots=True)
class AnalysisResult:
    """What one file says. Packages come without ``layer``: the applier sets it."""

    packages: tuple[Package, ...] = ()
    os: OSInfo | None = None
    #: Files owned by the OS package manager (dpkg ``info/*.list``); language packages found at these
    #: paths were installed by the OS and are reported as OS packages only (as Trivy does).
    system_files: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()


EMPTY = AnalysisResult()


class Analyzer(Protocol):
    """A package or OS analyzer. Implementations are small frozen dataclasses or module-level objects."""

    # Read-only properties rather than plain attributes, so that frozen dataclasses (whose fields
    # cannot be assigned) satisfy the protocol under mypy.

    @property
    def name(self) -> str:
        """Unique name (``dpkg``, ``python-dist``…); a duplicate fails at start."""
        ...

    @property
    def version(self) -> int:
        """Bump on any change to what ``analyze`` returns."""
        ...

    @property
    def max_bytes(self) -> int:
        """Largest file this analyzer will read; larger files are skipped with a warning."""
        ...

    def wants(self, path: str, size: int, mode: int) -> bool:
        """Cheap test on the path (and size/mode); called for every file of every layer."""
        ...

    def analyze(self, file: FileInput) -> AnalysisResult:
        """Parse one file. Must not raise on bad content: return warnings instead."""
        ...
