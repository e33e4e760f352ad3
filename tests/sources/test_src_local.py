"""Local sources: OCI layouts (single and multi-platform), docker archives (ours, skopeo's, Docker 25's
OCI-in-tar), and ``dir:`` trees with hostile symlinks."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import tarfile
from dataclasses import replace
from pathlib import Path

import pytest
from tests.sources.toy_analyzers import ToyOS, ToyPkgs
from tests.support.imagewriter import (
    File,
    ImageRefs,
    Layer,
    PlatformImage,
    Whiteout,
    build_image,
    prepare_blob,
    write_layer_tar,
    write_oci_index_layout,
)

from garrison.config import Settings
from garrison.errors import BadImageError, NotFoundError
from garrison.inventory.scan import scan_image
from garrison.model import Inventory, SourceKind
from garrison.progress import NO_PROGRESS
from garrison.sources import open_source

BASE = Layer(
    entries=[
        File("etc/os-release", b"ID=debian\nVERSION_ID=12\n"),
        File("var/lib/toy/status", b"base-files 12\nlibc6 2.36\n"),
    ]
)
APP = Layer(
    entries=[
        File("var/lib/toy/status", b"base-files 12\nlibc6 2.36\ncurl 7.88\n"),
        File("app/a.pyinfo", b"a 1.0"),
    ]
)
TOP = Layer(entries=[Whiteout("app/a.pyinfo"), File("app/b.pyinfo", b"b 2.0")], pax=True)


def scan(ref: str, settings: Settings) -> Inventory:
    with open_source(ref, settings).open() as img:
        return scan_image(img, [ToyOS(), ToyPkgs()], settings, NO_PROGRESS)


def summary(inv: Inventory) -> list[tuple[str, str, str]]:
    return [(p.type.value, p.name, p.version) for p in inv.packages]


EXPECTED = [
    ("deb", "base-files", "12"),
    ("deb", "curl", "7.88"),
    ("deb", "libc6", "2.36"),
    ("pypi", "b", "2.0"),
]


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> ImageRefs:
    d = tmp_path_factory.mktemp("img")
    return build_image([BASE, APP, TOP], work=d / "work", oci_dir=d / "oci", archive=d / "image.tar")


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(cache_dir=tmp_path / "cache", no_cache=True)


def test_oci_layout(image: ImageRefs, settings: Settings) -> None:
    inv = scan(image.oci_ref, settings)
    a = inv.artifact
    assert a.kind is SourceKind.OCI
    assert a.digest == image.manifest_digest
    assert a.config_digest == image.config_digest
    assert [la.diff_id for la in a.layers] == list(image.diff_ids)
    assert [la.digest for la in a.layers] == list(image.layer_digests)
    assert (a.os, a.architecture) == ("linux", "amd64")
    assert summary(inv) == EXPECTED
    assert inv.os is not None and (inv.os.family, inv.os.version_id) == ("debian", "12")


def test_oci_layout_without_tag_and_unknown_tag(image: ImageRefs, settings: Settings) -> None:
    assert summary(scan(f"oci:{image.oci_dir}", settings)) == EXPECTED
    with pytest.raises(NotFoundError, match="nope"):
        scan(f"oci:{image.oci_dir}:nope", settings)
    with pytest.raises(NotFoundError):
        scan(f"oci:{image.oci_dir}/missing", settings)


def test_docker_archive(image: ImageRefs, settings: Settings) -> None:
    inv = scan(image.archive_ref, settings)
    assert inv.artifact.kind is SourceKind.DOCKER_ARCHIVE
    assert inv.artifact.config_digest == image.config_digest
    assert [la.diff_id for la in inv.artifact.layers] == list(image.diff_ids)
    assert inv.artifact.repo_tags == ("garrison/test:latest",)
    assert summary(inv) == EXPECTED


@pytest.mark.slow
def test_skopeo_written_archive_and_layout(image: ImageRefs, settings: Settings, tmp_path: Path) -> None:
    if not shutil.which("skopeo"):
        pytest.skip("skopeo not installed")
    archive = tmp_path / "skopeo.tar"
    layout = tmp_path / "skopeo-oci"
    subprocess.run(["skopeo", "copy", "--quiet", image.oci_ref, f"docker-archive:{archive}:x/y:1"], check=True)
    subprocess.run(["skopeo", "copy", "--quiet", image.oci_ref, f"oci:{layout}:v1"], check=True)
    assert summary(scan(f"docker-archive:{archive}", settings)) == EXPECTED
    assert summary(scan(f"oci:{layout}:v1", settings)) == EXPECTED


def _tar_dir(src: Path, dest: Path, extra: dict[str, bytes], links: dict[str, str]) -> None:
    with tarfile.open(dest, "w") as tf:
        for root, _dirs, files in os.walk(src):
            for f in files:
                full = Path(root) / f
                tf.add(full, arcname=str(full.relative_to(src)))
        for name, data in extra.items():
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            tf.addfile(ti, io.BytesIO(data))
        for name, target in links.items():
            ti = tarfile.TarInfo(name)
            ti.type = tarfile.SYMTYPE
            ti.linkname = target
            tf.addfile(ti)


def test_docker25_archive_oci_layout_inside(image: ImageRefs, settings: Settings, tmp_path: Path) -> None:
    """Docker 25+ ``docker save``: an OCI layout in the tar, manifest.json naming blobs, and the legacy
    ``<id>/layer.tar`` names kept as symlinks into ``blobs/``."""
    assert image.oci_dir is not None
    index = json.loads((image.oci_dir / "index.json").read_bytes())
    manifest = json.loads((image.oci_dir / "blobs/sha256" / index["manifests"][0]["digest"][7:]).read_bytes())
    legacy = {f"legacy{i}/layer.tar": f"../blobs/sha256/{d['digest'][7:]}" for i, d in enumerate(manifest["layers"])}
    manifest_json = [
        {
            "Config": f"blobs/sha256/{manifest['config']['digest'][7:]}",
            "RepoTags": ["d25:latest"],
            "Layers": list(legacy),
        }
    ]
    with_manifest = tmp_path / "d25.tar"
    _tar_dir(image.oci_dir, with_manifest, {"manifest.json": json.dumps(manifest_json).encode()}, legacy)
    inv = scan(f"docker-archive:{with_manifest}", settings)
    assert summary(inv) == EXPECTED
    assert inv.artifact.repo_tags == ("d25:latest",)
    only_index = tmp_path / "oci-only.tar"
    _tar_dir(image.oci_dir, only_index, {}, {})
    assert summary(scan(f"docker-archive:{only_index}", settings)) == EXPECTED


def test_archive_that_is_not_a_tar(tmp_path: Path, settings: Settings) -> None:
    bad = tmp_path / "x.tar"
    bad.write_bytes(b"\x1f\x8b" + b"\x00" * 600)
    with pytest.raises(BadImageError):
        scan(f"docker-archive:{bad}", settings)
    with pytest.raises(NotFoundError):
        scan(f"docker-archive:{tmp_path / 'missing.tar'}", settings)


@pytest.fixture(scope="module")
def multiarch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("multi")
    blobs = d / "oci" / "blobs" / "sha256"
    images = []
    for arch, variant, pkg in (
        ("amd64", None, "amd-only"),
        ("arm64", "v8", "arm-only"),
        ("arm", "v7", "armhf"),
    ):
        layer = Layer(entries=[File("var/lib/toy/status", f"{pkg} 1\n".encode())])
        tar = write_layer_tar(d / f"{arch}.tar", layer)
        images.append(PlatformImage([prepare_blob(tar, blobs, "gzip")], arch, variant=variant))
    write_oci_index_layout(d / "oci", images, tags=["multi"])
    return d / "oci"


@pytest.mark.parametrize(
    ("platform", "pkg"),
    [
        ("linux/amd64", "amd-only"),
        ("linux/arm64", "arm-only"),
        ("linux/arm64/v8", "arm-only"),
        ("linux/arm/v7", "armhf"),
    ],
)
def test_index_platform_selection(multiarch: Path, settings: Settings, platform: str, pkg: str) -> None:
    inv = scan(f"oci:{multiarch}:multi", replace(settings, platform=platform))
    assert [p.name for p in inv.packages] == [pkg]
    assert inv.artifact.architecture == platform.split("/")[1]


def test_index_without_the_platform(multiarch: Path, settings: Settings) -> None:
    with pytest.raises(NotFoundError, match=r"linux/amd64.*linux/arm64/v8"):
        scan(f"oci:{multiarch}:multi", replace(settings, platform="linux/s390x"))
    with pytest.raises(NotFoundError):
        scan(f"oci:{multiarch}:multi", replace(settings, platform="linux/arm/v6"))


def test_dir_source_never_follows_symlinks(tmp_path: Path, settings: Settings) -> None:
    outside = tmp_path / "outside"
    (outside / "var/lib/toy").mkdir(parents=True)
    (outside / "var/lib/toy/status").write_text("secret-outside 6.6\n")
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc/os-release").write_text("ID=alpine\nVERSION_ID=3.19.1\n")
    (root / "usr/lib/py").mkdir(parents=True)
    (root / "usr/lib/py/inside.pyinfo").write_text("inside 1")
    # Hostile links: to the outside tree, to /, loops, a link named like a wanted file.
    (root / "var").symlink_to(outside / "var")
    (root / "escape").symlink_to("../outside")
    (root / "slash").symlink_to("/")
    (root / "loop-a").symlink_to("loop-b")
    (root / "loop-b").symlink_to("loop-a")
    (root / "usr/lib/py/self").symlink_to(".")
    (root / "usr/lib/py/linked.pyinfo").symlink_to(outside / "var/lib/toy/status")
    inv = scan(f"dir:{root}", settings)
    assert summary(inv) == [("pypi", "inside", "1")]
    assert inv.os is not None and inv.os.family == "alpine"
    assert inv.artifact.kind is SourceKind.DIR
    assert inv.packages[0].layer == ""


def test_dir_source_missing(tmp_path: Path, settings: Settings) -> None:
    with pytest.raises(NotFoundError):
        scan(f"dir:{tmp_path / 'nope'}", settings)


def test_docker_archive_with_several_images(image: ImageRefs, settings: Settings, tmp_path: Path) -> None:
    other = build_image(
        [Layer(entries=[File("app/o.pyinfo", b"other 7")])],
        work=tmp_path / "w",
        archive=tmp_path / "other.tar",
        repo="x/other",
        tag="7",
    )
    merged = tmp_path / "merged.tar"
    manifests: list[dict[str, object]] = []
    seen: set[str] = set()
    with tarfile.open(merged, "w") as out:
        for arc in (image.archive, other.archive):
            assert arc is not None
            with tarfile.open(arc) as tf:
                for m in tf:
                    f = tf.extractfile(m) if m.isfile() else None
                    if m.name == "manifest.json" and f is not None:
                        manifests += json.loads(f.read())
                    elif m.name not in seen and m.name != "repositories":
                        seen.add(m.name)
                        out.addfile(m, f)
        data = json.dumps(manifests).encode()
        ti = tarfile.TarInfo("manifest.json")
        ti.size = len(data)
        out.addfile(ti, io.BytesIO(data))
    assert summary(scan(f"docker-archive:{merged}", settings)) == EXPECTED
    assert summary(scan(f"docker-archive:{merged}:x/other:7", settings)) == [("pypi", "other", "7")]
    assert summary(scan(f"docker-archive:{merged}:garrison/test", settings)) == EXPECTED
    with pytest.raises(NotFoundError, match="x/other:7"):
        scan(f"docker-archive:{merged}:x/none:1", settings)
