"""The analyzer contract.

An analyzer is declared, not written as a lifecycle: a name, a version, the paths it wants and a pure
parse function from one file's bytes to packages. The walker asks every analyzer ``wants()`` for each
file of a layer, reads the wanted files once, and calls ``analyze()``. Results are cached per layer
(keyed by the layer's diff_id plus every analyzer's name and version), so bumping ``version`` after a
parser change invalidates stale cache entries.

Dispatch hints. ``wants`` runs for every entry of every layer, so an analyzer may also declare, as
plain class attributes, cheap conditions that the walker checks for all analyzers at once (one set
lookup, one ``startswith``/``endswith`` over a tuple) before it calls any ``wants``:

* ``paths: frozenset[str]`` — the exact paths it can want;
* ``path_prefixes: tuple[str, ...]`` — it only wants paths starting with one of these;
* ``path_infixes: tuple[str, ...]`` — it only wants paths containing one of these (``dir:`` mode's
  OS analyzers, which read databases below the root too);
* ``basenames: frozenset[str]`` / ``suffixes: tuple[str, ...]`` — it only wants files whose base name
  is one of these or ends with one of these (declared by :class:`~garrison.inventory.lang.spec.FileAnalyzer`);
* ``executables_only: bool`` with ``min_size: int`` — it only wants files with an executable bit
  that are at least ``min_size`` bytes.

Reading hint: ``random_access: bool`` — the analyzer reads the file through ``FileInput.read_at``
only, so the walker hands it a random-access reader (a layer member spooled to a temporary file, or
the file on disk) instead of the content (see :mod:`garrison.inventory.reader`).

The path hints combine with *or* (any declared one matching is enough), ``executables_only`` with
*and*. A hint only decides whether ``wants`` is asked: every hint must be implied by ``wants``
returning true, and ``wants`` still has the last word. An analyzer without hints is asked for every
file. ``tests/inventory/test_inv_dispatch.py`` checks the hints against ``wants`` for every
registered analyzer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from garrison.model import OSInfo, Package
from garrison.model.secret import Secret

MiB = 1024 * 1024


class RandomAccess(Protocol):
    """Positioned reads from one file (a spooled layer member, a file on disk, bytes in memory)."""

    def read_at(self, offset: int, n: int) -> bytes:
        """Up to ``n`` bytes starting at ``offset`` (fewer at the end of the file)."""
        ...


@dataclass(frozen=True, slots=True)
class FileInput:
    """One file handed to an analyzer. ``path`` is relative to the image root, without a leading '/'.

    Analyzers that declare ``random_access = True`` get ``reader`` and an empty ``content``: they read
    only what they need through :meth:`read_at` (headers, section tables, one section), so a large
    executable is never held in memory. Every other analyzer gets the whole file as ``content``.
    """

    path: str
    content: bytes
    mode: int = 0o644
    #: The file's size (``len(content)`` when not given and there is no reader).
    size: int = 0
    reader: RandomAccess | None = None

    def __post_init__(self) -> None:
        if self.reader is None and not self.size and self.content:
            object.__setattr__(self, "size", len(self.content))

    def read_at(self, offset: int, n: int) -> bytes:
        """Up to ``n`` bytes at ``offset``, from the reader when there is one, else from ``content``."""
        if offset < 0 or n < 0:
            raise ValueError("negative offset or length")
        if self.reader is not None:
            return self.reader.read_at(offset, n)
        return self.content[offset : offset + n]


@dataclass(frozen=True, slots=True)
class AnalysisResult:
    """What one file says. Packages come without ``layer``: the applier sets it."""

    packages: tuple[Package, ...] = ()
    os: OSInfo | None = None
    #: Files owned by the OS package manager (dpkg ``info/*.list``); language packages found at these
    #: paths were installed by the OS and are reported as OS packages only (as Trivy does).
    system_files: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    #: Secrets in the file (the secret analyzer's result); ``layer`` is set by the applier like a package's.
    secrets: tuple[Secret, ...] = ()


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
