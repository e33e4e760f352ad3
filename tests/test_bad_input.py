"""Hostile and broken images (``tests/support/crafted.py``) scanned with the production analyzers.

Every case must end in a clear :class:`GarrisonError` or a warning plus a skipped entry, the one sane
file of each crafted layer (the canary) must not stop anything, and nothing may be written anywhere but
the cache directory: the tree around the image, the working directory and the escape targets named by
the crafted members are checked before and after.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from tests.support import crafted
from tests.support.imagewriter import (
    LayerTar,
    RawMember,
    blob_from_bytes,
    prepare_blob,
    write_oci_layout,
    write_raw_tar,
)

from garrison.api import inventory
from garrison.config import Settings
from garrison.errors import (
    BadImageError,
    DigestMismatchError,
    GarrisonError,
    LimitExceededError,
    NotFoundError,
)
from garrison.model import Inventory

pytestmark = pytest.mark.slow

ESCAPE_TARGETS = [
    Path("/tmp/garrison-escaped.txt"),
    Path("/etc/absolute-name.txt"),
    Path("/tmp/written-through-link.txt"),
]


def tree(root: Path) -> dict[str, tuple[int, int]]:
    """path → (size, mtime_ns) of everything under ``root``; symlinks are listed, never followed."""
    out: dict[str, tuple[int, int]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            st = p.lstat()
            out[str(p.relative_to(root))] = (st.st_size, st.st_mtime_ns)
    return out


@pytest.fixture
def sandbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    """Settings whose cache lives in ``tmp_path/cache``; the cwd is an empty directory that must stay so."""
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    for t in ESCAPE_TARGETS:
        assert not t.exists(), f"{t} exists before the test"
    yield Settings(cache_dir=tmp_path / "cache")
    assert list(work.iterdir()) == [], "nothing may be written in the working directory"
    assert [p.name for p in tmp_path.iterdir() if p.name not in ("cwd", "cache")] == []
    for t in ESCAPE_TARGETS:
        assert not t.exists(), f"a crafted member escaped to {t}"
    tmp = tmp_path / "cache" / "tmp"
    assert not tmp.exists() or list(tmp.iterdir()) == [], "temporary files must be removed"


def run(image: Path, settings: Settings) -> Inventory:
    """Scan a crafted image, checking that the image's own directory tree is left untouched."""
    around = image.parent  # the crafted image's own cache directory
    before = tree(around)
    try:
        return inventory(crafted.oci_ref(image), settings)
    finally:
        assert tree(around) == before, "the image directory must not change"


def canary_ok(inv: Inventory) -> None:
    assert inv.artifact.layers, "the image was opened"


@pytest.mark.parametrize("fmt", ["oci", "archive"])
def test_path_traversal_members_are_skipped(fmt: crafted.Fmt, sandbox: Settings) -> None:
    inv = run(crafted.path_traversal_image(fmt), sandbox)
    canary_ok(inv)
    skipped = [w for w in inv.warnings if "escaping the image root" in w]
    # ``/etc/absolute-name.txt`` is an absolute name, read as relative to the root (as docker does).
    assert len(skipped) == len(crafted.TRAVERSAL_NAMES) - 1, inv.warnings


@pytest.mark.parametrize("fmt", ["oci", "archive"])
def test_links_escaping_are_not_followed(fmt: crafted.Fmt, sandbox: Settings) -> None:
    inv = run(crafted.link_escape_image(fmt), sandbox)
    canary_ok(inv)
    assert any("hard-up" in w for w in inv.warnings), inv.warnings
    assert inv.packages == ()


@pytest.mark.parametrize("fmt", ["oci", "archive"])
def test_symlink_loops_do_not_hang(fmt: crafted.Fmt, sandbox: Settings) -> None:
    inv = run(crafted.symlink_loop_image(fmt), sandbox)
    canary_ok(inv)
    assert inv.os is None  # etc/os-release is a link into a loop: not followed


def test_gzip_bomb_is_capped(sandbox: Settings) -> None:
    with pytest.raises(LimitExceededError, match="decompression bomb"):
        run(crafted.gzip_bomb_image(), replace(sandbox, max_layer_bytes=256 * 1024**2))
    assert not (sandbox.cache_dir / "layers").exists() or not list((sandbox.cache_dir / "layers").iterdir())


def _peak_rss_mb(ref: str, cache: Path, **settings: object) -> tuple[int, str]:
    """Scan in a child process; (peak RSS in MB, its stdout)."""
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "from garrison.api import inventory\n"
        "from garrison.config import Settings\n"
        f"inv = inventory({ref!r}, Settings(cache_dir=Path({str(cache)!r}), **{settings!r}))\n"
        "print(len(inv.packages), len(inv.warnings))\n"
        # VmHWM, not ru_maxrss: Linux keeps ru_maxrss across execve, so a child of a big pytest process
        # would report the parent's size; the high-water mark of the new address space starts afresh.
        "hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM:')][0]\n"
        "print(int(hwm.split()[1]) // 1024)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.split()
    return int(lines[-1]), proc.stdout


def test_multi_gigabyte_layer_streams_in_bounded_memory(sandbox: Settings) -> None:
    """The 2 GiB bomb under a cap above its size: walked to the end, memory stays flat."""
    peak, _ = _peak_rss_mb(crafted.oci_ref(crafted.gzip_bomb_image()), sandbox.cache_dir, no_cache=True)
    assert peak < 250, f"peak RSS {peak} MB"


def test_truncated_gzip_layer(sandbox: Settings) -> None:
    with pytest.raises(BadImageError, match="truncated"):
        run(crafted.truncated_gzip_image(), sandbox)


def test_truncated_tar_layer(sandbox: Settings) -> None:
    with pytest.raises(BadImageError, match="truncated"):
        run(crafted.truncated_tar_archive(), sandbox)


@pytest.mark.parametrize("fmt", ["oci", "archive"])
def test_digest_mismatch(fmt: crafted.Fmt, sandbox: Settings) -> None:
    with pytest.raises(DigestMismatchError):
        run(crafted.digest_mismatch_image(fmt), sandbox)


@pytest.mark.parametrize("fmt", ["oci", "archive"])
def test_missing_blob(fmt: crafted.Fmt, sandbox: Settings) -> None:
    with pytest.raises(NotFoundError, match=r"missing|no member"):
        run(crafted.missing_blob_image(fmt), sandbox)


@pytest.mark.parametrize("fmt", ["oci", "archive"])
def test_manifest_not_json(fmt: crafted.Fmt, sandbox: Settings) -> None:
    with pytest.raises(BadImageError, match="JSON"):
        run(crafted.manifest_not_json_image(fmt), sandbox)


def test_huge_status_file_is_skipped_with_a_warning(sandbox: Settings) -> None:
    inv = run(crafted.huge_dpkg_status_image(), sandbox)
    assert any("var/lib/dpkg/status" in w and "limit" in w for w in inv.warnings), inv.warnings
    assert not [p for p in inv.packages if p.name.startswith("garrison-fake")]


def test_jar_bomb_stays_bounded(sandbox: Settings) -> None:
    peak, out = _peak_rss_mb(crafted.oci_ref(crafted.jar_zip_bomb_image()), sandbox.cache_dir, no_cache=True)
    assert peak < 400, f"peak RSS {peak} MB ({out})"


def test_every_error_is_a_garrison_error(tmp_path: Path) -> None:
    settings = Settings(cache_dir=tmp_path / "cache")
    junk = tmp_path / "junk"
    junk.mkdir()
    (junk / "index.json").write_text('{"manifests": [{"digest": "sha256:../../../../etc/passwd"}]}')
    with pytest.raises(GarrisonError, match="invalid"):
        inventory(f"oci:{junk}", settings)
    (junk / "index.json").write_text("[]")
    with pytest.raises(BadImageError):
        inventory(f"oci:{junk}", settings)


@pytest.mark.parametrize("compression", ["zstd", "gzip"])
def test_truncated_layer_any_compression(compression: str, sandbox: Settings, tmp_path: Path) -> None:
    """A blob cut short whose digest matches the short bytes: the walk must fail, never return a
    partial inventory (zstd's reader cannot tell a cut frame from an end, the diff_id check can)."""

    rng = random.Random(3)
    tar_path = tmp_path / "cache" / "src.tar"
    tar_path.parent.mkdir(parents=True)
    members = [RawMember(f"f{i}", data=rng.randbytes(4096)) for i in range(64)]
    diff_id = write_raw_tar(tar_path, members)
    full = prepare_blob(
        LayerTar(tar_path, diff_id, tar_path.stat().st_size),
        tmp_path / "cache" / "full",
        compression,  # type: ignore[arg-type]
    )
    data = full.path.read_bytes()
    layout = tmp_path / "cache" / "img"
    blob = blob_from_bytes(data[: len(data) * 3 // 4], layout / "blobs" / "sha256", full.media_type, diff_id)
    write_oci_layout(layout, [blob], ["latest"])
    with pytest.raises(BadImageError):
        inventory(f"oci:{layout}:latest", replace(sandbox, no_cache=True))
