"""The cached real test images are what other tests assume they are.

Checked with independent readers where possible (hashlib over the raw blobs, tarfile, skopeo), so a bug
in our image writer cannot hide behind the same bug in garrison's reader.
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import tarfile
from pathlib import Path
from typing import Any

import pytest
import zstandard
from isal import igzip
from tests.support import debian
from tests.support.images import APP_TAG, DEBIAN_TAG, LONG_PATH, BuiltImages

pytestmark = pytest.mark.slow

REF_NAME = "org.opencontainers.image.ref.name"


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
    return "sha256:" + h.hexdigest()


def blob(layout: Path, digest: str) -> Path:
    return layout / "blobs" / "sha256" / digest.split(":", 1)[1]


def load_oci(layout: Path, tag: str) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """(index, manifest, config) for ``tag``, asserting each descriptor's size and digest."""
    assert json.loads((layout / "oci-layout").read_text()) == {"imageLayoutVersion": "1.0.0"}
    index = json.loads((layout / "index.json").read_text())
    assert index["schemaVersion"] == 2
    [desc] = [m for m in index["manifests"] if m["annotations"][REF_NAME] == tag]
    assert desc["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
    manifest_path = blob(layout, desc["digest"])
    assert sha256_of(manifest_path) == desc["digest"]
    assert manifest_path.stat().st_size == desc["size"]
    manifest = json.loads(manifest_path.read_text())
    config_path = blob(layout, manifest["config"]["digest"])
    assert sha256_of(config_path) == manifest["config"]["digest"]
    config = json.loads(config_path.read_text())
    return index, manifest, config


def decompressed_digest(path: Path, media_type: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as raw:
        if media_type.endswith("+gzip"):
            stream: Any = igzip.GzipFile(fileobj=raw)
        elif media_type.endswith("+zstd"):
            stream = zstandard.ZstdDecompressor().stream_reader(raw)
        else:
            stream = raw
        while chunk := stream.read(1 << 20):
            h.update(chunk)
    return "sha256:" + h.hexdigest()


@pytest.fixture(scope="module")
def app_layer_tar(test_images: BuiltImages) -> Path:
    """The app layer as an uncompressed tar (from the plain-layer layout)."""
    _, manifest, _ = load_oci(test_images.app_oci_plain, APP_TAG)
    return blob(test_images.app_oci_plain, manifest["layers"][1]["digest"])


def test_debian_oci_layout_is_consistent(test_images: BuiltImages) -> None:
    _, manifest, config = load_oci(test_images.debian_oci, DEBIAN_TAG)
    assert (config["architecture"], config["os"]) == ("amd64", "linux")
    [layer] = manifest["layers"]
    assert layer["mediaType"] == "application/vnd.oci.image.layer.v1.tar+gzip"
    path = blob(test_images.debian_oci, layer["digest"])
    assert sha256_of(path) == layer["digest"] and path.stat().st_size == layer["size"]
    assert decompressed_digest(path, layer["mediaType"]) == config["rootfs"]["diff_ids"][0]
    assert len(config["history"]) == 1
    assert test_images.debian_oci_ref == f"oci:{test_images.debian_oci}:12"


@pytest.mark.parametrize("variant", ["app_oci", "app_oci_zstd", "app_oci_plain"])
def test_app_layouts_share_diff_ids(test_images: BuiltImages, variant: str) -> None:
    layout = getattr(test_images, variant)
    _, manifest, config = load_oci(layout, APP_TAG)
    assert len(manifest["layers"]) == 3
    suffix = {"app_oci": "+gzip", "app_oci_zstd": "+zstd", "app_oci_plain": ".tar"}[variant]
    for layer, diff_id in zip(manifest["layers"], config["rootfs"]["diff_ids"], strict=True):
        assert layer["mediaType"].endswith(suffix)
        assert sha256_of(blob(layout, layer["digest"])) == layer["digest"]
        assert decompressed_digest(blob(layout, layer["digest"]), layer["mediaType"]) == diff_id
    assert tuple(config["rootfs"]["diff_ids"]) == test_images.app.diff_ids
    # The app image is Debian plus two layers: its first layer is the Debian image's layer.
    assert test_images.app.diff_ids[0] == test_images.debian.diff_ids[0]


@pytest.mark.parametrize("name", ["debian", "app"])
def test_docker_archive_matches_oci_layout(test_images: BuiltImages, name: str) -> None:
    archive: Path = getattr(test_images, f"{name}_archive")
    refs = getattr(test_images, name)
    with tarfile.open(archive) as tar:
        [entry] = json.load(tar.extractfile("manifest.json"))  # type: ignore[arg-type]
        tag = DEBIAN_TAG if name == "debian" else APP_TAG
        assert entry["RepoTags"] == [f"garrison/{name}:{tag}"]
        config_bytes = tar.extractfile(entry["Config"]).read()  # type: ignore[union-attr]
        assert "sha256:" + hashlib.sha256(config_bytes).hexdigest() == refs.config_digest
        config = json.loads(config_bytes)
        assert tuple(config["rootfs"]["diff_ids"]) == refs.diff_ids
        for layer_name, diff_id in zip(entry["Layers"], refs.diff_ids, strict=True):
            assert re.fullmatch(r"[0-9a-f]{64}/layer\.tar", layer_name)
            h = hashlib.sha256()
            fh = tar.extractfile(layer_name)
            assert fh is not None
            while chunk := fh.read(1 << 20):
                h.update(chunk)
            assert "sha256:" + h.hexdigest() == diff_id
        repositories = json.load(tar.extractfile("repositories"))  # type: ignore[arg-type]
        assert repositories == {f"garrison/{name}": {tag: entry["Layers"][-1].split("/")[0]}}


def test_debian_rootfs_is_real_minbase(test_images: BuiltImages) -> None:
    status = (test_images.debian_rootfs / "var/lib/dpkg/status").read_text()
    packages = re.findall(r"^Package: (\S+)", status, re.M)
    assert 80 <= len(packages) <= 100
    assert {"libc6", "dpkg", "apt", "tzdata"} <= set(packages)
    assert not list((test_images.debian_rootfs / "var/cache/apt/archives").glob("*.deb"))
    assert "bookworm" in (test_images.debian_rootfs / "etc/os-release").read_text()


def test_app_layer_has_real_language_packages(app_layer_tar: Path) -> None:
    wanted = {
        f"{debian.VENV_SITE}/Django-2.2.10.dist-info/METADATA",
        f"{debian.VENV_SITE}/requests-2.19.1.dist-info/METADATA",
        "app/node_modules/lodash/package.json",
        "app/node_modules/minimist/package.json",
        "app/package-lock.json",
        "var/lib/dpkg/status",
    }
    found: dict[str, bytes] = {}
    with tarfile.open(app_layer_tar) as tar:
        for member in tar:
            if member.name in wanted:
                found[member.name] = tar.extractfile(member).read()  # type: ignore[union-attr]
    assert set(found) == wanted
    metadata = found[f"{debian.VENV_SITE}/Django-2.2.10.dist-info/METADATA"].decode()
    assert "Name: Django\n" in metadata and "Version: 2.2.10\n" in metadata
    assert json.loads(found["app/node_modules/lodash/package.json"])["version"] == "4.17.15"
    assert json.loads(found["app/node_modules/minimist/package.json"])["version"] == "1.2.0"
    status = found["var/lib/dpkg/status"].decode()
    assert re.search(r"^Package: python3\.11$", status, re.M)
    assert re.search(r"^Package: nodejs$", status, re.M)
    assert not re.search(r"^Package: tzdata$", status, re.M), "tzdata was purged in the app layer"


def test_app_layer_whiteouts(app_layer_tar: Path) -> None:
    with tarfile.open(app_layer_tar) as tar:
        names = set(tar.getnames())
    assert "usr/share/.wh.zoneinfo" in names  # purged package's directory
    assert "var/lib/dpkg/info/.wh.tzdata.list" in names  # its dpkg file list
    assert "usr/share/doc/debian-archive-keyring/.wh.copyright" in names  # plain file deletion
    assert f"{debian.OPAQUE_DIR}/.wh..wh..opq" in names
    assert f"{debian.OPAQUE_DIR}/99garrison" in names
    # Unchanged base files are not repeated in the upper layer.
    assert "usr/bin/dpkg" not in names and "etc/debian_version" not in names


def test_pax_layer_is_pax_heavy_and_base_layer_is_not(test_images: BuiltImages) -> None:
    _, manifest, _ = load_oci(test_images.app_oci_plain, APP_TAG)
    base, _, pax = (blob(test_images.app_oci_plain, layer["digest"]) for layer in manifest["layers"])
    with tarfile.open(pax) as tar:
        members = tar.getmembers()
    assert LONG_PATH in {m.name for m in members}
    assert all("mtime" in m.pax_headers for m in members)
    assert any(m.islnk() and m.linkname == "app/config/app.env" for m in members)
    with tarfile.open(base) as tar:
        for i, member in enumerate(tar):
            assert not member.pax_headers, member.name
            assert isinstance(member.mtime, int) and member.uid == 0 and member.gid == 0
            if i > 2000:
                break


@pytest.mark.parametrize("which", ["debian_oci_ref", "app_oci_ref", "app_archive_ref", "app_oci_zstd_ref"])
def test_skopeo_reads_the_images(test_images: BuiltImages, which: str) -> None:
    out = subprocess.run(["skopeo", "inspect", getattr(test_images, which)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    info = json.loads(out.stdout)
    assert info["Architecture"] == "amd64" and info["Os"] == "linux"
    assert len(info["Layers"]) == (1 if which.startswith("debian") else 3)
