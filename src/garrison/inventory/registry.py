"""The one list of analyzers. Adding an analyzer means adding it here; nothing registers itself.

``image`` mode reads what is installed; ``dir`` mode (a source tree or a root filesystem on disk) adds
the lock-file analyzers, whose packages are only declared.

The image analyzers are listed by name, version and where they live, and imported only when a layer
has to be walked: a fully cached scan needs nothing but the names and versions (they make the cache
key), and importing the analyzer modules is a large part of a warm start. ``name`` and ``version``
here must equal the analyzer's own; ``tests/inventory/test_inv_registry_purl.py`` checks that every
entry does.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from typing import Any

from garrison.errors import UsageError
from garrison.inventory.base import AnalysisResult, Analyzer, FileInput

MODES = ("image", "dir")

#: Loaded analyzers by target (analyzers are immutable, so one instance serves every scan).
_LOADED: dict[str, Analyzer] = {}


class Declared:
    """An analyzer by name and version, imported on first use. It is a complete analyzer (everything
    but ``name`` and ``version`` is delegated to the loaded one); scans call :meth:`load` before
    walking a layer so that the per-file calls go straight to the real analyzer. (A plain class, not
    a dataclass: defining one costs more at every start than this whole list.)"""

    __slots__ = ("name", "target", "version")

    def __init__(self, name: str, version: int, target: str) -> None:
        self.name = name
        self.version = version
        #: ``module:attribute`` of an analyzer class (instantiated without arguments) or object.
        self.target = target

    def __repr__(self) -> str:
        return f"Declared({self.name!r}, {self.version!r}, {self.target!r})"

    def load(self) -> Analyzer:
        analyzer = _LOADED.get(self.target)
        if analyzer is None:
            module, _, attr = self.target.partition(":")
            obj = getattr(importlib.import_module(module), attr)
            analyzer = obj() if isinstance(obj, type) else obj
            _LOADED[self.target] = analyzer
        return analyzer

    @property
    def max_bytes(self) -> int:
        return self.load().max_bytes

    def wants(self, path: str, size: int, mode: int) -> bool:
        return self.load().wants(path, size, mode)

    def analyze(self, file: FileInput) -> AnalysisResult:
        return self.load().analyze(file)

    def __getattr__(self, attr: str) -> Any:
        # Optional attributes (the dispatch hints) of the real analyzer; never the object protocol.
        if attr.startswith("__"):
            raise AttributeError(attr)
        return getattr(self.load(), attr)


_IMAGE: tuple[Declared, ...] = (
    Declared("os-release", 1, "garrison.inventory.os.release:ReleaseAnalyzer"),
    Declared("dpkg", 2, "garrison.inventory.os.dpkg:DpkgAnalyzer"),
    Declared("apk", 2, "garrison.inventory.os.apk:ApkAnalyzer"),
    Declared("rpm", 2, "garrison.inventory.os.rpm:RpmAnalyzer"),
    Declared("python-dist", 2, "garrison.inventory.lang.python:ANALYZER"),
    Declared("npm-package", 2, "garrison.inventory.lang.npm:ANALYZER"),
    Declared("java-archive", 2, "garrison.inventory.lang.java:ANALYZER"),
    Declared("ruby-gemspec", 1, "garrison.inventory.lang.ruby:ANALYZER"),
    Declared("dotnet-deps", 2, "garrison.inventory.lang.dotnet:ANALYZER"),
    Declared("php-composer", 1, "garrison.inventory.lang.php:ANALYZER"),
    Declared("go-binary", 2, "garrison.inventory.lang.gobinary:ANALYZER"),
    Declared("rust-binary", 2, "garrison.inventory.lang.rust:ANALYZER"),
)


#: ``dir`` mode's variants of image analyzers (same name and version, other paths).
_DIR_VARIANTS: dict[str, Declared] = {
    "dpkg": Declared("dpkg", 2, "garrison.inventory.os.dpkg:NESTED"),
    "apk": Declared("apk", 2, "garrison.inventory.os.apk:NESTED"),
    "rpm": Declared("rpm", 2, "garrison.inventory.os.rpm:NESTED"),
}


def check_unique(analyzers: Iterable[Analyzer]) -> tuple[Analyzer, ...]:
    """Return the analyzers as a tuple; a name used twice is a programming error caught at start."""
    out = tuple(analyzers)
    seen: set[str] = set()
    for a in out:
        if a.name in seen:
            raise ValueError(f"duplicate analyzer name {a.name!r}")
        seen.add(a.name)
    return out


def declared_analyzers(mode: str = "image") -> tuple[Analyzer, ...]:
    """The analyzers for a scan mode, the image ones not imported yet (see :class:`Declared`)."""
    if mode not in MODES:
        raise UsageError(f"unknown analysis mode {mode!r} (expected one of {', '.join(MODES)})")
    analyzers: tuple[Analyzer, ...] = _IMAGE
    if mode == "dir":
        from garrison.inventory.lang.lockfiles import LOCKFILE_ANALYZERS

        # A folder may hold several root filesystems: OS databases are read below its root too.
        analyzers = tuple(_DIR_VARIANTS.get(a.name, a) for a in _IMAGE) + LOCKFILE_ANALYZERS
    return check_unique(analyzers)


def loaded(analyzers: Iterable[Analyzer]) -> tuple[Analyzer, ...]:
    """The analyzers with every :class:`Declared` one replaced by the real analyzer."""
    return tuple(a.load() if isinstance(a, Declared) else a for a in analyzers)


def default_analyzers(mode: str = "image") -> tuple[Analyzer, ...]:
    """The analyzers for a scan mode (``image`` or ``dir``), imported."""
    return loaded(declared_analyzers(mode))
