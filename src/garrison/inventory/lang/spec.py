"""The declared analyzer most language ecosystems need: a name, the file names it wants, a parse function.

``wants`` must cost next to nothing — the walker calls it for every file of every layer — so matching
is one ``rfind`` plus a set lookup or a suffix test; an optional ``path_ok`` predicate runs only after
that cheap test hit.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ClassVar

from garrison.inventory.base import AnalysisResult, FileInput, MiB
from garrison.inventory.lang.exe import MAGICS
from garrison.model import Package

ParseFn = Callable[[FileInput], AnalysisResult]


@dataclass(frozen=True, slots=True)
class FileAnalyzer:
    """An analyzer declared as data: which files (by base name or suffix) and how to parse them."""

    name: str
    version: int
    parse: ParseFn
    #: Exact base names wanted (``package-lock.json``).
    basenames: frozenset[str] = frozenset()
    #: Base-name suffixes wanted (``.gemspec``, ``.deps.json``).
    suffixes: tuple[str, ...] = ()
    #: Extra test on the whole path, run only when the base name matched.
    path_ok: Callable[[str], bool] | None = None
    max_bytes: int = 32 * MiB
    #: ``parse`` reads only through ``FileInput.read_at`` (archives): a large file is then handed
    #: over as a reader, never read whole (see :mod:`garrison.inventory.reader`).
    random_access: bool = False
    #: Every accepted path ending: ``/`` + each base name, and each suffix. Derived, not passed.
    _tails: tuple[str, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        tails = tuple("/" + b for b in sorted(self.basenames)) + self.suffixes
        object.__setattr__(self, "_tails", tails)

    def wants(self, path: str, size: int, mode: int) -> bool:
        # One C-level endswith over the whole path (no slicing), plus the top-level exact names.
        if path.endswith(self._tails) or path in self.basenames:
            return self.path_ok is None or self.path_ok(path)
        return False

    def analyze(self, file: FileInput) -> AnalysisResult:
        """Run the parse function; any exception from bad content becomes a warning, never a crash."""
        try:
            return self.parse(file)
        except Exception as exc:  # parsers face arbitrary bytes from images
            return AnalysisResult(warnings=(f"{file.path}: {self.name}: cannot parse: {exc}",))


@dataclass(frozen=True, slots=True)
class BinaryAnalyzer:
    """An analyzer of executables declared as data: every executable file of at least ``min_size``
    bytes goes to ``parse``, which recognizes its own format from the content (Go build info,
    cargo-auditable data) and returns nothing for other binaries. ``parse`` reads only through
    ``FileInput.read_at`` (``random_access``), so a large binary is never read whole."""

    name: str
    version: int
    parse: ParseFn
    #: Larger files are skipped; they are spooled, not held in memory, so the limit is about time.
    max_bytes: int = 4096 * MiB
    #: Dispatch hints (see :mod:`garrison.inventory.base`).
    min_size: int = 4096
    executables_only: ClassVar[bool] = True
    random_access: ClassVar[bool] = True
    #: A file starting with none of these is not opened further (the walker need not spool it).
    magics: ClassVar[tuple[bytes, ...]] = MAGICS

    def wants(self, path: str, size: int, mode: int) -> bool:
        return bool(mode & 0o111) and size >= self.min_size

    def analyze(self, file: FileInput) -> AnalysisResult:
        return self.parse(file)


def result(packages: list[Package], warnings: list[str] | None = None) -> AnalysisResult:
    """An :class:`AnalysisResult` from lists (the shape most parse functions build)."""
    return AnalysisResult(packages=tuple(packages), warnings=tuple(warnings or ()))


def text_of(file: FileInput) -> str:
    """File content as text; undecodable bytes are replaced rather than fatal."""
    return file.content.decode("utf-8", "replace")
