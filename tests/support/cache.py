"""A build-once, crash-safe, multi-process-safe cache directory for expensive test inputs.

Why a stamp file: a build can die half-way (Ctrl-C, full disk); the stamp is written last, so an entry
without a matching stamp is treated as garbage and rebuilt. Why ``flock``: two pytest processes started at
the same moment must not debootstrap into the same directory; the second one waits and then reuses.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def cache_root() -> Path:
    """The cache directory (created on demand)."""
    root = Path(os.environ.get("GARRISON_TEST_CACHE") or REPO_ROOT / ".cache" / "test-images")
    root.mkdir(parents=True, exist_ok=True)
    return root


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """An exclusive advisory lock held for the ``with`` block (released by the kernel if we die)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+b") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def _mounts_under(path: Path) -> list[str]:
    """Mount points at or below ``path`` (deepest first), e.g. a /proc left by a killed debootstrap."""
    prefix = str(path.resolve())
    found: list[str] = []
    with open("/proc/self/mounts", encoding="utf-8") as fh:
        for line in fh:
            mnt = line.split()[1].replace("\\040", " ")
            if mnt == prefix or mnt.startswith(prefix + "/"):
                found.append(mnt)
    return sorted(found, key=len, reverse=True)


def remove_tree(path: Path) -> None:
    """Delete a directory safely: unmount anything inside first so we never recurse into /proc or /sys."""
    if not path.exists() and not path.is_symlink():
        return
    if path.is_dir() and not path.is_symlink():
        for mnt in _mounts_under(path):
            subprocess.run(["umount", "-l", mnt], check=False)
        if _mounts_under(path):
            raise RuntimeError(f"refusing to delete {path}: still has mounts inside")
        shutil.rmtree(path)
    else:
        path.unlink()


def is_current(name: str, version: str) -> bool:
    """Whether ``name`` is built with ``version`` (so no build tools are needed to use it)."""
    root = cache_root()
    stamp = root / f"{name}.stamp"
    return (root / name).exists() and stamp.exists() and stamp.read_text(encoding="utf-8") == version


def cached(name: str, version: str, build: Callable[[Path], None]) -> Path:
    """Return ``cache_root()/name``, building it with ``build(tmp_dir)`` unless a stamp says it is current.

    ``build`` receives an empty scratch directory; on success it is renamed into place and the stamp
    (holding ``version``) is written last. Bump ``version`` when the recipe changes to force a rebuild.
    """
    root = cache_root()
    final = root / name
    stamp = root / f"{name}.stamp"

    def current() -> bool:
        return final.exists() and stamp.exists() and stamp.read_text(encoding="utf-8") == version

    if current():
        return final
    with file_lock(root / f"{name}.lock"):
        if current():
            return final
        stamp.unlink(missing_ok=True)
        remove_tree(final)
        tmp = root / f"{name}.building"
        remove_tree(tmp)
        tmp.mkdir()
        try:
            build(tmp)
        except BaseException:
            remove_tree(tmp)
            raise
        os.rename(tmp, final)
        stamp.write_text(version, encoding="utf-8")
    return final
