"""The inventory pipeline end to end: one walk per layer, layer attribution, whiteouts, the per-layer
cache (with proofs that a warm scan never touches a blob), and the real Debian test images."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from tests.sources.toy_analyzers import ToyOS, ToyPkgs
from tests.support.imagewriter import (
    Dir,
    File,
    Hardlink,
    ImageRefs,
    Layer,
    Opaque,
    Symlink,
    Whiteout,
    build_image,
)

from garrison.config import Settings
from garrison.errors import DigestMismatchError, NotFoundError
from garrison.inventory.base import AnalysisResult, FileInput
from garrison.inventory.cache import FORMAT
from garrison.inventory.scan import scan_image
from garrison.model import Inventory, PackageType
from garrison.progress import NO_PROGRESS
from garrison.sources import open_source


def scan(ref: str, settings: Settings, analyzers: list | None = None) -> Inventory:  # type: ignore[type-arg]
    with open_source(ref, settings).open() as img:
        return scan_image(img, analyzers or [ToyOS(), ToyPkgs()], settings, NO_PROGRESS)


def by_name(inv: Inventory) -> dict[str, tuple[str, int]]:
    """name → (version, index of the attributed layer)."""
    diff_ids = [la.diff_id for la in inv.artifact.layers]
    return {p.name: (p.version, diff_ids.index(p.layer)) for p in inv.packages}


def status(*pkgs: str, files: tuple[str, ...] = ()) -> bytes:
    text = "".join(f"{p}\n" for p in pkgs)
    if files:
        text += "files:\n" + "".join(f"{f}\n" for f in files)
    return text.encode()


LAYERS = [
    # 0: base OS; its package db owns usr/lib/py/os-owned.pyinfo (a language package installed by the OS).
    Layer(
        entries=[
            File("usr/lib/os-release", b"ID=debian\nVERSION_ID=12\n"),
            Symlink("etc/os-release", "../usr/lib/os-release"),
            File("var/lib/toy/status", status("libc6 2.36", "zlib 1.2", files=("/usr/lib/py/os-owned.pyinfo",))),
            File("usr/lib/py/os-owned.pyinfo", b"os-owned 1"),
            File("opt/tool/t.pyinfo", b"tool 1"),
            File("srv/gone.pyinfo", b"gone 1"),
        ]
    ),
    # 1: installs curl, upgrades zlib; adds a python package; hides opt/tool with an opaque dir.
    Layer(
        entries=[
            File(
                "var/lib/toy/status",
                status("libc6 2.36", "zlib 1.3", "curl 8", files=("/usr/lib/py/os-owned.pyinfo",)),
            ),
            File("app/a.pyinfo", b"a 1"),
            Opaque("opt/tool"),
            File("opt/tool/new.pyinfo", b"newtool 2"),
            Whiteout("srv/gone.pyinfo"),
        ]
    ),
    # 2: rewrites the status file without changes (only the file's mtime changed); re-creates srv/gone;
    #    a hard link to a wanted file, and one to a file nobody wanted under its first name.
    Layer(
        entries=[
            File(
                "var/lib/toy/status",
                status("libc6 2.36", "zlib 1.3", "curl 8", files=("/usr/lib/py/os-owned.pyinfo",)),
            ),
            File("srv/gone.pyinfo", b"gone 2"),
            File("data/blob.txt", b"hl 5"),
            Hardlink("app/hl.pyinfo", "data/blob.txt"),
            Hardlink("app/a-copy.pyinfo", "app/b.pyinfo"),
            File("app/b.pyinfo", b"b 3"),
        ],
        pax=True,
    ),
]


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> ImageRefs:
    d = tmp_path_factory.mktemp("pipe")
    return build_image(LAYERS, work=d / "work", oci_dir=d / "oci", archive=d / "image.tar")


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(cache_dir=tmp_path / "cache")


def test_attribution_whiteouts_and_system_files(image: ImageRefs, settings: Settings) -> None:
    inv = scan(image.oci_ref, settings)
    got = by_name(inv)
    assert got.pop("libc6") == ("2.36", 0)  # unchanged since the base layer
    assert got.pop("zlib") == ("1.3", 1)  # upgraded in layer 1: introduced there
    assert got.pop("curl") == ("8", 1)  # layer 2 rewrote the file but did not introduce curl
    assert got.pop("a") == ("1", 1)
    assert got.pop("newtool") == ("2", 1)
    assert got.pop("gone") == ("2", 2)  # whited out in 1, re-created in 2
    assert got.pop("hl") == ("5", 2)  # hard link to an unwanted file: found through a second pass
    assert got.pop("b") == ("3", 2)
    assert got == {}, "tool (opaque dir), os-owned (OS system file) must be gone"
    assert inv.os is not None and inv.os.family == "debian" and not inv.os.distroless
    locations = {p.name: p.locations for p in inv.packages}
    assert locations["hl"] == ("app/hl.pyinfo",)
    assert locations["zlib"] == ("var/lib/toy/status",)


def test_archive_and_layout_agree(image: ImageRefs, settings: Settings) -> None:
    a = scan(image.oci_ref, settings)
    b = scan(image.archive_ref, replace(settings, no_cache=True))
    assert a.packages == b.packages
    assert a.os == b.os


def test_distroless_when_no_os_packages(tmp_path: Path, settings: Settings) -> None:
    refs = build_image(
        [Layer(entries=[File("etc/os-release", b"ID=debian\nVERSION_ID=12\n"), File("app/x.pyinfo", b"x 1")])],
        work=tmp_path / "w",
        oci_dir=tmp_path / "oci",
    )
    inv = scan(refs.oci_ref, settings)
    assert inv.os is not None and inv.os.distroless
    assert [p.type for p in inv.packages] == [PackageType.PYTHON]


def _delete_layer_blobs(refs: ImageRefs, indexes: list[int] | None = None) -> None:
    assert refs.oci_dir is not None
    for i, d in enumerate(refs.layer_digests):
        if indexes is None or i in indexes:
            (refs.oci_dir / "blobs" / "sha256" / d[7:]).unlink()


def test_warm_scan_reads_no_blob(tmp_path: Path, settings: Settings) -> None:
    refs = build_image(LAYERS, work=tmp_path / "w", oci_dir=tmp_path / "oci")
    cold = scan(refs.oci_ref, settings)
    files = sorted(p.name for p in (settings.cache_dir / "layers").iterdir())
    assert len(files) == 3 and all(f.endswith(".json") for f in files)
    _delete_layer_blobs(refs)  # the proof: a warm scan cannot read what is gone
    warm = scan(refs.oci_ref, settings)
    assert warm.packages == cold.packages and warm.os == cold.os
    with pytest.raises(NotFoundError):
        scan(refs.oci_ref, replace(settings, no_cache=True))


def test_shared_base_layer_is_reused(tmp_path: Path, settings: Settings) -> None:
    first = build_image(LAYERS[:1], work=tmp_path / "w1", oci_dir=tmp_path / "one")
    second = build_image(
        [LAYERS[0], Layer(entries=[File("app/z.pyinfo", b"z 9")])],
        work=tmp_path / "w2",
        oci_dir=tmp_path / "two",
    )
    assert first.diff_ids[0] == second.diff_ids[0]
    scan(first.oci_ref, settings)
    _delete_layer_blobs(second, [0])  # only the new top layer may be read
    inv = scan(second.oci_ref, settings)
    assert by_name(inv)["z"] == ("9", 1)
    assert by_name(inv)["libc6"] == ("2.36", 0)


@dataclass
class VersionedPkgs(ToyPkgs):
    version: int = 2


def test_analyzer_version_bump_invalidates_the_cache(tmp_path: Path, settings: Settings) -> None:
    refs = build_image(LAYERS[:1], work=tmp_path / "w", oci_dir=tmp_path / "oci")
    scan(refs.oci_ref, settings)
    _delete_layer_blobs(refs)
    scan(refs.oci_ref, settings)  # same analyzers: cached
    with pytest.raises(NotFoundError):
        scan(refs.oci_ref, settings, [ToyOS(), VersionedPkgs()])


def test_corrupt_cache_entry_is_a_miss(tmp_path: Path, settings: Settings) -> None:
    refs = build_image(LAYERS[:1], work=tmp_path / "w", oci_dir=tmp_path / "oci")
    cold = scan(refs.oci_ref, settings)
    for f in (settings.cache_dir / "layers").iterdir():
        f.write_text("{not json")
    again = scan(refs.oci_ref, settings)
    assert again.packages == cold.packages
    entry = next((settings.cache_dir / "layers").iterdir())
    assert json.loads(entry.read_text())["format"] == FORMAT  # rewritten whole
    assert not [p for p in (settings.cache_dir / "layers").iterdir() if p.name.startswith(".tmp")]


def test_diff_id_mismatch_is_detected(tmp_path: Path, settings: Settings) -> None:
    """A config whose diff_id does not match the layer content: the walk's own hash catches it."""
    refs = build_image(LAYERS[:1], work=tmp_path / "w", oci_dir=tmp_path / "oci", archive=tmp_path / "a.tar")
    from tests.support.imagewriter import blob_from_file, write_oci_layout

    assert refs.oci_dir is not None
    blob = blob_from_file(
        refs.oci_dir / "blobs/sha256" / refs.layer_digests[0][7:],
        "application/vnd.oci.image.layer.v1.tar+gzip",
        diff_id="sha256:" + "0" * 64,
    )
    write_oci_layout(tmp_path / "bad", [blob], ["latest"])
    with pytest.raises(DigestMismatchError, match=r"diff_id|config says"):
        scan(f"oci:{tmp_path / 'bad'}:latest", replace(settings, no_cache=True))
    assert not (settings.cache_dir / "layers").exists() or not list((settings.cache_dir / "layers").iterdir())


class Exploding:
    name = "exploding"
    version = 1
    max_bytes = 1024

    def wants(self, path: str, size: int, mode: int) -> bool:
        return path.endswith(".pyinfo")

    def analyze(self, file: FileInput) -> AnalysisResult:
        raise RuntimeError("boom")


def test_analyzer_errors_and_size_limits_become_warnings(image: ImageRefs, settings: Settings) -> None:
    small = ToyPkgs(max_bytes=8)
    inv = scan(image.oci_ref, replace(settings, no_cache=True), [ToyOS(), small, Exploding()])
    assert any("boom" in w and "exploding" in w for w in inv.warnings)
    assert any("var/lib/toy/status" in w and "limit" in w for w in inv.warnings)
    assert "var/lib/toy/status" not in small.seen
    assert {p.name for p in inv.packages} >= {"a", "b"}


def test_duplicate_analyzer_names_fail(image: ImageRefs, settings: Settings) -> None:
    with pytest.raises(ValueError, match="duplicate"):
        scan(image.oci_ref, settings, [ToyPkgs(), ToyPkgs()])


def test_each_layer_is_walked_once(image: ImageRefs, settings: Settings) -> None:
    toy = ToyPkgs()
    scan(image.oci_ref, replace(settings, no_cache=True, workers=1), [ToyOS(), toy])
    assert sorted(toy.seen) == sorted(
        [
            "var/lib/toy/status",
            "usr/lib/py/os-owned.pyinfo",
            "opt/tool/t.pyinfo",
            "srv/gone.pyinfo",
            "var/lib/toy/status",
            "app/a.pyinfo",
            "opt/tool/new.pyinfo",
            "var/lib/toy/status",
            "srv/gone.pyinfo",
            "app/hl.pyinfo",
            "app/b.pyinfo",
            "app/a-copy.pyinfo",
        ]
    )


# -- the real Debian images, with the production analyzers ---------------------------------------------


@pytest.mark.slow
def test_real_images_every_source_kind_agrees(test_images, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from garrison.api import inventory

    settings = Settings(cache_dir=tmp_path / "cache", no_cache=True)
    debian = inventory(test_images.debian_oci_ref, settings)
    assert debian.os is not None and (debian.os.family, debian.os.version_id) == ("debian", "12")
    assert len([p for p in debian.packages if p.type is PackageType.DEB]) >= 80
    base_diff = debian.artifact.layers[0].diff_id
    assert {p.layer for p in debian.packages} == {base_diff}

    app = inventory(test_images.app_oci_ref, settings)
    names = {(p.type, p.name): p for p in app.packages}
    diff_ids = [la.diff_id for la in app.artifact.layers]
    assert (PackageType.DEB, "tzdata") not in names  # purged in the app layer (whiteouts)
    assert diff_ids.index(names[(PackageType.DEB, "python3")].layer) == 1
    assert diff_ids.index(names[(PackageType.DEB, "libc6")].layer) == 0
    assert (
        names[(PackageType.PYTHON, "django")].version == "2.2.10"
        if (PackageType.PYTHON, "django") in names
        else names[(PackageType.PYTHON, "Django")].version == "2.2.10"
    )
    assert names[(PackageType.NPM, "lodash")].version == "4.17.15"
    for ref in (test_images.app_archive_ref, test_images.app_oci_zstd_ref, test_images.app_oci_plain_ref):
        other = inventory(ref, settings)
        assert other.packages == app.packages, ref
        assert other.os == app.os
    warm_settings = replace(settings, no_cache=False)
    inventory(test_images.app_oci_ref, warm_settings)
    assert inventory(test_images.app_oci_ref, warm_settings).packages == app.packages


def test_file_replaced_by_a_symlink_or_directory(tmp_path: Path, settings: Settings) -> None:
    refs = build_image(
        [
            Layer(
                entries=[
                    File("app/c.pyinfo", b"c 1"),
                    File("app/d.pyinfo", b"d 1"),
                    File("app/e.pyinfo", b"e 1"),
                ]
            ),
            Layer(entries=[Symlink("app/c.pyinfo", "/elsewhere"), Dir("app/d.pyinfo")]),
        ],
        work=tmp_path / "w",
        oci_dir=tmp_path / "oci",
    )
    inv = scan(refs.oci_ref, settings)
    assert [p.name for p in inv.packages] == ["e"]
    # Same answer from the cached layer results.
    assert [p.name for p in scan(refs.oci_ref, settings).packages] == ["e"]


class RecordingProgress:
    """A real Progress implementation that remembers what it was told."""

    def __init__(self) -> None:
        self.tasks: list[dict[str, object]] = []

    def task(self, description: str, total: int | None = None, unit: str = "B") -> RecordingProgress.Task:
        t = RecordingProgress.Task(description, total)
        self.tasks.append(t.state)
        return t

    def note(self, message: str) -> None:
        pass

    class Task:
        def __init__(self, description: str, total: int | None) -> None:
            self.state: dict[str, object] = {
                "description": description,
                "total": total,
                "done": False,
                "completed": 0,
            }

        def advance(self, amount: int) -> None:
            self.state["completed"] = int(self.state["completed"]) + amount  # type: ignore[call-overload]

        def update(self, completed: int, total: int | None = None) -> None:
            self.state["completed"] = completed

        def done(self) -> None:
            self.state["done"] = True


def test_progress_task_per_layer(image: ImageRefs, settings: Settings) -> None:
    progress = RecordingProgress()
    with open_source(image.oci_ref, replace(settings, no_cache=True)).open() as img:
        scan_image(img, [ToyOS(), ToyPkgs()], settings, progress)
        sizes = sorted(la.info.size for la in img.layers)
    assert len(progress.tasks) == 3
    assert all(t["done"] for t in progress.tasks)
    assert sorted(int(t["completed"]) for t in progress.tasks) == sizes  # type: ignore[call-overload]
    # Cached layers are not walked, so they get no task.
    progress = RecordingProgress()
    with open_source(image.oci_ref, settings).open() as img:
        scan_image(img, [ToyOS(), ToyPkgs()], settings, progress)
    assert progress.tasks == []
