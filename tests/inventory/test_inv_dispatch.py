"""The dispatch hints analyzers declare agree with their ``wants``: :class:`Dispatch` (which asks
``wants`` only where the hints match) gives exactly the analyzers a plain loop over ``wants`` gives."""

from __future__ import annotations

import itertools
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from garrison.inventory.base import AnalysisResult, FileInput
from garrison.inventory.registry import declared_analyzers, default_analyzers
from garrison.inventory.scan import Dispatch

_MODES = (0, 0o644, 0o755, 0o100, 0o010, 0o001, 0o4755)
_SIZES = (0, 10, 4095, 4096, 5_000_000)


class _NoHints:
    """An analyzer without hints: asked about every file."""

    name = "no-hints"
    version = 1
    max_bytes = 1024

    def wants(self, path: str, size: int, mode: int) -> bool:
        return path.endswith(".toy")

    def analyze(self, file: FileInput) -> AnalysisResult:
        return AnalysisResult()


def _declared_paths(mode: str) -> list[str]:
    """Every path, prefix, base name and suffix the analyzers declare, placed at a few depths."""
    names: set[str] = set()
    for a in default_analyzers(mode):
        names |= set(getattr(a, "paths", ()) or ())
        names |= {p + "x" for p in getattr(a, "path_prefixes", ()) or ()}
        names |= {p + "info/x.list" for p in getattr(a, "path_prefixes", ()) or ()}
        names |= set(getattr(a, "basenames", ()) or ())
        names |= {"x" + s for s in getattr(a, "suffixes", ()) or ()}
    out: set[str] = set()
    for n in names:
        base = n.rsplit("/", 1)[-1]
        out |= {n, base, "a/" + n, "usr/lib/" + base, n + ".bak", n[:-1], "x" + base}
    return sorted(out)


#: Files the analyzers read, spelled out (hints are derived from code, these from the formats).
KNOWN = [
    "etc/os-release",
    "usr/lib/os-release",
    "etc/debian_version",
    "var/lib/dpkg/status",
    "var/lib/dpkg/status.d/base",
    "var/lib/dpkg/status.d/base.md5sums",
    "var/lib/dpkg/info/libc6:amd64.list",
    "var/lib/dpkg/info/libc6:amd64.md5sums",
    "lib/apk/db/installed",
    "var/lib/rpm/rpmdb.sqlite",
    "var/lib/rpm/Packages",
    "usr/lib/sysimage/rpm/Packages.db",
    "usr/lib/python3/dist-packages/six-1.16.0.dist-info/METADATA",
    "usr/lib/python3/dist-packages/six-1.16.0.egg-info",
    "usr/lib/python3/dist-packages/six-1.16.0.egg-info/PKG-INFO",
    "app/node_modules/express/package.json",
    "app/app.jar",
    "usr/local/bundle/specifications/rack-3.0.8.gemspec",
    "app/app.deps.json",
    "vendor/composer/installed.json",
    "app/package-lock.json",
    "app/go.mod",
    "usr/local/bin/app",
]


def _real_paths() -> list[str]:
    paths: list[str] = []
    for root in ("/usr/lib", "/etc", "/var/lib/dpkg", "/usr/bin"):
        n = 0
        for dirpath, _dirs, files in os.walk(root):
            paths += [os.path.join(dirpath, f)[1:] for f in files]
            n += len(files)
            if n > 2000:
                break
    return paths


@pytest.mark.parametrize("mode", ["image", "dir"])
def test_dispatch_matches_wants(mode: str) -> None:
    analyzers = default_analyzers(mode)
    dispatch = Dispatch(analyzers)
    cases = [(p, s, m) for p in KNOWN + _declared_paths(mode) for s, m in itertools.product(_SIZES, _MODES)]
    cases += [(p, s, m) for p in _real_paths() for s, m in ((1000, 0o644), (5_000_000, 0o755))]
    for path, size, fmode in cases:
        expected = [a for a in analyzers if a.wants(path, size, fmode)]
        assert dispatch(path, size, fmode) == expected, (path, size, oct(fmode))


def test_analyzers_without_hints_are_always_asked() -> None:
    analyzers = (*default_analyzers(), _NoHints())
    dispatch = Dispatch(analyzers)
    assert [a.name for a in dispatch("srv/x.toy", 1, 0o644)] == ["no-hints"]
    assert [a.name for a in dispatch("usr/bin/app", 5_000_000, 0o755)] == [
        "go-binary",
        "rust-binary",
    ]
    assert dispatch("srv/readme", 1, 0o644) == []


@settings(max_examples=200, deadline=None)
@given(
    path=st.lists(
        st.sampled_from(
            [
                "etc",
                "var",
                "lib",
                "dpkg",
                "info",
                "status",
                "status.d",
                "x.list",
                "METADATA",
                "app.jar",
                "package.json",
                "node_modules",
                "a.gemspec",
                "specifications",
                "rpm",
                "Packages",
                "apk",
                "db",
                "installed",
                "os-release",
                "x.deps.json",
                "x.egg-info",
                "PKG-INFO",
                "composer",
                "installed.json",
            ]
        ),
        min_size=1,
        max_size=6,
    ).map("/".join),
    size=st.sampled_from(_SIZES),
    fmode=st.sampled_from(_MODES),
)
def test_dispatch_matches_wants_on_generated_paths(path: str, size: int, fmode: int) -> None:
    for mode in ("image", "dir"):
        analyzers = default_analyzers(mode)
        assert Dispatch(analyzers)(path, size, fmode) == [a for a in analyzers if a.wants(path, size, fmode)]


def test_known_paths_are_wanted() -> None:
    """The spelled-out corpus stays meaningful: each of its paths is read by some analyzer."""
    analyzers = default_analyzers("dir")
    assert [p for p in KNOWN if not any(a.wants(p, 5_000_000, 0o755) for a in analyzers)] == []


def test_declared_analyzers_dispatch_like_loaded_ones() -> None:
    """Dispatch over the not-yet-imported registry entries reads their hints through the proxy."""
    declared, real = declared_analyzers("dir"), default_analyzers("dir")
    d, r = Dispatch(declared), Dispatch(real)
    for path in [*KNOWN, "usr/share/doc/x", "etc/passwd"]:
        for size, fmode in ((10, 0o644), (5_000_000, 0o755)):
            assert [a.name for a in d(path, size, fmode)] == [a.name for a in r(path, size, fmode)]
