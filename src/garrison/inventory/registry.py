"""The one list of analyzers. Adding an analyzer means adding it here; nothing registers itself.

``image`` mode reads what is installed; ``dir`` mode (a source tree or a root filesystem on disk) adds
the lock-file analyzers, whose packages are only declared.
"""

from __future__ import annotations

from collections.abc import Iterable

from garrison.errors import UsageError
from garrison.inventory.base import Analyzer
from garrison.inventory.lang import dotnet, java, npm, php, python, ruby
from garrison.inventory.lang.gobinary import GoBinaryAnalyzer
from garrison.inventory.lang.lockfiles import LOCKFILE_ANALYZERS
from garrison.inventory.lang.rust import RustBinaryAnalyzer
from garrison.inventory.os.apk import ApkAnalyzer
from garrison.inventory.os.dpkg import DpkgAnalyzer
from garrison.inventory.os.release import ReleaseAnalyzer
from garrison.inventory.os.rpm import RpmAnalyzer

MODES = ("image", "dir")


def _image_analyzers() -> tuple[Analyzer, ...]:
    return (
        ReleaseAnalyzer(),
        DpkgAnalyzer(),
        ApkAnalyzer(),
        RpmAnalyzer(),
        python.ANALYZER,
        npm.ANALYZER,
        java.ANALYZER,
        ruby.ANALYZER,
        dotnet.ANALYZER,
        php.ANALYZER,
        GoBinaryAnalyzer(),
        RustBinaryAnalyzer(),
    )


def check_unique(analyzers: Iterable[Analyzer]) -> tuple[Analyzer, ...]:
    """Return the analyzers as a tuple; a name used twice is a programming error caught at start."""
    out = tuple(analyzers)
    seen: set[str] = set()
    for a in out:
        if a.name in seen:
            raise ValueError(f"duplicate analyzer name {a.name!r}")
        seen.add(a.name)
    return out


def default_analyzers(mode: str = "image") -> tuple[Analyzer, ...]:
    """The analyzers for a scan mode (``image`` or ``dir``)."""
    if mode not in MODES:
        raise UsageError(f"unknown analysis mode {mode!r} (expected one of {', '.join(MODES)})")
    analyzers: tuple[Analyzer, ...] = _image_analyzers()
    if mode == "dir":
        analyzers += LOCKFILE_ANALYZERS
    return check_unique(analyzers)
