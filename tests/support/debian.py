"""Real Debian root filesystems: debootstrap a minbase bookworm, then grow an application layer on it.

Kept separate from the image writer so the slow, network-bound part (debootstrap, apt, pip, npm) is
cached on its own and the fast part (tar + gzip) can be re-run when the writer changes.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from tests.support.cache import cached
from tests.support.imagewriter import Opaque, Whiteout

DEFAULT_MIRROR = "http://deb.debian.org/debian"
SUITE = "bookworm"
DEBIAN_VERSION = "debian-rootfs-v1"
APP_VERSION = "app-layer-v1"

#: Debian packages the app layer installs with apt inside the chroot (real .debs, real dpkg database).
APT_PACKAGES = ("python3", "python3-venv", "nodejs")
#: A leaf package of minbase that the app layer purges, so the layer carries real dpkg whiteouts.
PURGED_PACKAGE = "tzdata"
#: Old, known-vulnerable Python distributions (pure wheels, real dist-info METADATA) installed into /app/venv.
PIP_PACKAGES = (
    "Django==2.2.10",
    "requests==2.19.1",
    "Jinja2==2.10",
    "urllib3==1.23",
    "idna==2.7",
    "chardet==3.0.4",
    "certifi==2018.4.16",
    "sqlparse==0.2.4",
    "pytz==2018.4",
)
#: Old, known-vulnerable npm packages installed (with their dependency tree) into /app.
NPM_PACKAGES = ("lodash@4.17.15", "minimist@1.2.0", "express@4.16.0")
VENV_SITE = "app/venv/lib/python3.11/site-packages"
#: Directory the app layer replaces wholesale (an opaque whiteout in the layer).
OPAQUE_DIR = "etc/apt/apt.conf.d"
#: A file from the base that the app layer deletes outright (a plain whiteout).
DELETED_FILE = "usr/share/doc/debian-archive-keyring/copyright"


def apt_mirror() -> str:
    """The Debian mirror this machine's apt already uses (through its proxy), else deb.debian.org."""
    candidates: list[Path] = [Path("/etc/apt/sources.list")]
    src_dir = Path("/etc/apt/sources.list.d")
    if src_dir.is_dir():
        candidates += sorted(src_dir.iterdir())
    for path in candidates:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError:
            continue
        # deb822 ("URIs: …" + "Suites: bookworm") or one-line ("deb URI bookworm main") formats.
        for stanza in re.split(r"\n\s*\n", text):
            if re.search(rf"^Suites:.*\b{SUITE}\b(?!-)", stanza, re.M):
                m = re.search(r"^URIs:\s*(\S+/debian)\s*$", stanza, re.M)
                if m:
                    return m.group(1)
        m = re.search(rf"^deb\s+(?:\[[^]]*\]\s+)?(\S+/debian)/?\s+{SUITE}\s", text, re.M)
        if m:
            return m.group(1)
    return DEFAULT_MIRROR


def _run(cmd: list[str], **kw: object) -> None:
    """Run a build command; on failure show its output in the exception (tests print it)."""
    proc = subprocess.run(cmd, capture_output=True, text=True, **kw)  # type: ignore[call-overload]
    if proc.returncode != 0:
        tail = (proc.stdout + proc.stderr)[-4000:]
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{tail}")


def _build_debian(dest: Path) -> None:
    root = dest / "rootfs"
    _run(["debootstrap", "--variant=minbase", SUITE, str(root), apt_mirror()])
    archives = root / "var/cache/apt/archives"
    for deb in archives.glob("*.deb"):
        deb.unlink()
    for leftover in (root / "var/lib/apt/lists").glob("*_Packages"):
        leftover.unlink()


def debian_rootfs() -> Path:
    """A real Debian 12 minbase root filesystem (about 88 dpkg packages), built once and cached."""
    return cached("debian-rootfs", DEBIAN_VERSION, _build_debian) / "rootfs"


@dataclass(frozen=True)
class AppLayer:
    """The app layer in two forms: ``upper`` holds only changed/new files (the diff) and ``deletions`` the
    whiteout/opaque markers that go with it; ``merged`` is the full resulting root filesystem."""

    merged: Path
    upper: Path
    deletions: tuple[Whiteout | Opaque, ...]


def _chroot(root: Path, *cmd: str) -> None:
    env = [
        "/usr/bin/env",
        "-i",
        "PATH=/usr/sbin:/usr/bin:/sbin:/bin",
        "DEBIAN_FRONTEND=noninteractive",
        "LC_ALL=C.UTF-8",
        "HOME=/root",
    ]
    _run(["chroot", str(root), *env, *cmd])


def _install_apt(root: Path) -> None:
    resolv = root / "etc/resolv.conf"
    saved = resolv.read_bytes() if resolv.exists() else None
    if resolv.is_symlink() or resolv.exists():
        resolv.unlink()
    shutil.copyfile("/etc/resolv.conf", resolv)
    try:
        _chroot(root, "apt-get", "update", "-q")
        _chroot(root, "apt-get", "install", "-y", "-q", "--no-install-recommends", *APT_PACKAGES)
        _chroot(root, "dpkg", "--purge", PURGED_PACKAGE)
        _chroot(root, "apt-get", "clean")
    finally:
        resolv.unlink()
        if saved is not None:
            resolv.write_bytes(saved)
    for lists in (root / "var/lib/apt/lists").glob("*"):
        if lists.is_file() and lists.name != "lock":
            lists.unlink()


def _install_app(root: Path) -> None:
    _chroot(root, "python3", "-m", "venv", "/app/venv")
    _run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--only-binary=:all:",
            "--no-compile",
            "--disable-pip-version-check",
            "--target",
            str(root / VENV_SITE),
            *PIP_PACKAGES,
        ]
    )
    _run(
        [
            "npm",
            "install",
            "--prefix",
            str(root / "app"),
            "--no-audit",
            "--no-fund",
            "--ignore-scripts",
            *NPM_PACKAGES,
        ]
    )
    (root / "app/server.js").write_text(
        "const express = require('express');\nexpress().listen(8080);\n", encoding="utf-8"
    )
    # Replace a base directory wholesale (opaque) and delete one base file (whiteout).
    opaque = root / OPAQUE_DIR
    shutil.rmtree(opaque)
    opaque.mkdir(mode=0o755)
    (opaque / "99garrison").write_text('APT::Install-Recommends "false";\n', encoding="utf-8")
    (root / DELETED_FILE).unlink()


def _same(a: os.stat_result, b: os.stat_result) -> bool:
    return (
        stat.S_IFMT(a.st_mode) == stat.S_IFMT(b.st_mode)
        and a.st_mode == b.st_mode
        and a.st_size == b.st_size
        and a.st_mtime_ns == b.st_mtime_ns
    )


def _copy_entry(src: Path, dst: Path, st: os.stat_result) -> None:
    if stat.S_ISDIR(st.st_mode):
        dst.mkdir(exist_ok=True)
        os.chmod(dst, stat.S_IMODE(st.st_mode))
    elif stat.S_ISLNK(st.st_mode):
        os.symlink(os.readlink(src), dst)
    elif stat.S_ISREG(st.st_mode):
        try:
            os.link(src, dst)  # shares the inode: keeps mtime/mode and hard links within the layer
        except OSError:
            shutil.copy2(src, dst)
    else:
        shutil.copy2(src, dst, follow_symlinks=False)


def diff_trees(lower: Path, merged: Path, upper: Path, opaque_dirs: tuple[str, ...] = ()) -> list[Whiteout | Opaque]:
    """Write into ``upper`` what changed from ``lower`` to ``merged``; return the whiteouts needed.

    Like an overlay upper dir: new and modified entries (with parent directories) are copied; an entry
    gone from ``merged`` becomes a :class:`Whiteout`; a directory in ``opaque_dirs`` is copied whole and
    marked :class:`Opaque` instead of listing what it lost.
    """
    marks: list[Whiteout | Opaque] = []

    def walk(rel: str) -> bool:
        """Returns whether anything under ``rel`` (a directory present in both) changed."""
        m_dir, l_dir = merged / rel, lower / rel
        changed = False
        m_names = sorted(os.listdir(m_dir))
        l_names = set(os.listdir(l_dir))
        for name in m_names:
            r = f"{rel}/{name}" if rel else name
            mst = os.lstat(merged / r)
            lst = os.lstat(lower / r) if name in l_names else None
            is_dir = stat.S_ISDIR(mst.st_mode)
            if r in opaque_dirs or lst is None or stat.S_IFMT(lst.st_mode) != stat.S_IFMT(mst.st_mode):
                _ensure_parents(r)
                _copy_tree(merged / r, upper / r)
                if r in opaque_dirs:
                    marks.append(Opaque(r))
                changed = True
            elif is_dir:
                if walk(r) or mst.st_mode != lst.st_mode:
                    _ensure_parents(r)
                    _copy_entry(merged / r, upper / r, mst)
                    changed = True
            elif not _same(mst, lst) or (
                stat.S_ISLNK(mst.st_mode) and os.readlink(merged / r) != os.readlink(lower / r)
            ):
                _ensure_parents(r)
                _copy_entry(merged / r, upper / r, mst)
                changed = True
        for name in sorted(l_names - set(m_names)):
            marks.append(Whiteout(f"{rel}/{name}" if rel else name))
            _ensure_parents(f"{rel}/{name}" if rel else name)
            changed = True
        return changed

    def _ensure_parents(rel: str) -> None:
        parts = rel.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            sub = "/".join(parts[:i])
            if not (upper / sub).exists():
                _copy_entry(merged / sub, upper / sub, os.lstat(merged / sub))

    def _copy_tree(src: Path, dst: Path) -> None:
        st = os.lstat(src)
        _copy_entry(src, dst, st)
        if stat.S_ISDIR(st.st_mode):
            for name in sorted(os.listdir(src)):
                _copy_tree(src / name, dst / name)

    upper.mkdir(parents=True, exist_ok=True)
    walk("")
    # Directory modes/mtimes of copied parents were fixed at creation; restore mtimes last.
    for dirpath, _dirs, _files in os.walk(upper, topdown=False):
        rel = os.path.relpath(dirpath, upper)
        src = merged / rel if rel != "." else merged
        st = os.lstat(src)
        os.utime(dirpath, ns=(st.st_atime_ns, st.st_mtime_ns))
    return marks


def _build_app(dest: Path) -> None:
    base = debian_rootfs()
    merged = dest / "merged"
    _run(["cp", "-a", "--reflink=auto", str(base), str(merged)])
    _install_apt(merged)
    _install_app(merged)
    marks = diff_trees(base, merged, dest / "upper", opaque_dirs=(OPAQUE_DIR,))
    doc = [{"kind": type(m).__name__, "path": m.path} for m in marks]
    (dest / "deletions.json").write_text(json.dumps(doc, indent=1), encoding="utf-8")


def app_layer() -> AppLayer:
    """The application layer on top of :func:`debian_rootfs`: apt-installed python3/nodejs, a purged
    package (real dpkg whiteouts), old pip packages in /app/venv, old npm packages in /app, an opaque dir."""
    root = cached("app-layer", f"{DEBIAN_VERSION}+{APP_VERSION}", _build_app)
    doc = json.loads((root / "deletions.json").read_text(encoding="utf-8"))
    kinds: dict[str, type[Whiteout] | type[Opaque]] = {"Whiteout": Whiteout, "Opaque": Opaque}
    marks = tuple(kinds[d["kind"]](d["path"]) for d in doc)
    return AppLayer(root / "merged", root / "upper", marks)


if __name__ == "__main__":  # pragma: no cover - manual warm-up: python -m tests.support.debian
    print(debian_rootfs(), app_layer().upper)
