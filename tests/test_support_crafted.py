"""The crafted bad inputs really carry the defect they are named after (checked with independent readers).

The big ones (2 GiB gzip bomb, 1 GiB jar bomb, 300 MB dpkg status) are cached; the first run writes them.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
import zipfile
from pathlib import Path
from typing import Any

import pytest
from isal import igzip
from tests.support import crafted

pytestmark = pytest.mark.slow


def oci_parts(layout: Path) -> tuple[dict[str, Any], Path]:
    """(manifest, first layer blob path) of a crafted OCI layout."""
    index = json.loads((layout / "index.json").read_text())
    digest = index["manifests"][0]["digest"].split(":")[1]
    manifest = json.loads((layout / "blobs/sha256" / digest).read_bytes())
    return manifest, layout / "blobs/sha256" / manifest["layers"][0]["digest"].split(":")[1]


def layer_names(path: Path) -> dict[str, tarfile.TarInfo]:
    if path.is_dir():
        _, blob = oci_parts(path)
        with tarfile.open(blob, "r:gz") as tar:
            return {m.name: m for m in tar}
    with tarfile.open(path) as outer:
        [entry] = json.load(outer.extractfile("manifest.json"))  # type: ignore[arg-type]
        with tarfile.open(fileobj=outer.extractfile(entry["Layers"][0])) as tar:
            return {m.name: m for m in tar}


@pytest.mark.parametrize("fmt", ["oci", "archive"])
def test_traversal_names_are_kept_verbatim(fmt: crafted.Fmt) -> None:
    names = layer_names(crafted.path_traversal_image(fmt))
    assert set(crafted.TRAVERSAL_NAMES) <= set(names)
    assert crafted.CANARY.name in names


@pytest.mark.parametrize("fmt", ["oci", "archive"])
def test_links_point_outside(fmt: crafted.Fmt) -> None:
    names = layer_names(crafted.link_escape_image(fmt))
    assert names["app/up-link"].issym() and names["app/up-link"].linkname.startswith("../../")
    assert names["app/hard-up"].islnk() and names["app/hard-up"].linkname == "../../../etc/passwd"
    assert names["app/hard-missing"].islnk()
    assert names["app/outdir/written-through-link.txt"].isfile()


def test_symlink_loops() -> None:
    names = layer_names(crafted.symlink_loop_image())
    assert names["loop/a"].linkname == "b" and names["loop/b"].linkname == "a"
    assert names["loop/self"].linkname == "self"
    assert sum(1 for n in names if n.startswith("chain/")) == 46


def test_gzip_bomb_is_small_and_claims_2_gib() -> None:
    layout = crafted.gzip_bomb_image()
    manifest, blob = oci_parts(layout)
    assert blob.stat().st_size < 16 * 1024 * 1024
    assert manifest["layers"][0]["mediaType"].endswith("+gzip")
    with igzip.open(blob, "rb") as gz, tarfile.open(fileobj=gz, mode="r|") as tar:
        bomb = next(m for m in tar if m.name == "bomb/zeros.bin")  # stop before inflating 2 GiB
    assert bomb.size == 2 * crafted.GiB


def test_truncated_gzip_has_valid_digest_but_ends_early() -> None:
    manifest, blob = oci_parts(crafted.truncated_gzip_image())
    data = blob.read_bytes()
    assert "sha256:" + hashlib.sha256(data).hexdigest() == manifest["layers"][0]["digest"]
    with pytest.raises(EOFError):
        igzip.decompress(data)


def test_truncated_tar_archive_breaks_the_tar_reader() -> None:
    with pytest.raises(tarfile.ReadError):
        layer_names(crafted.truncated_tar_archive())


def test_jar_bomb_entries() -> None:
    _, blob = oci_parts(crafted.jar_zip_bomb_image())
    with tarfile.open(blob, "r:gz") as tar:
        jar = tar.extractfile("app/lib/bomb-1.0.jar").read()  # type: ignore[union-attr]
    assert len(jar) < 8 * 1024 * 1024
    with zipfile.ZipFile(io.BytesIO(jar)) as zf:
        info = zf.getinfo("zeros.bin")
        assert info.file_size == crafted.GiB and info.compress_size < info.file_size // 500
        assert "groupId=org.example" in zf.read("META-INF/maven/org.example/bomb/pom.properties").decode()
        inner = zf.read("BOOT-INF/lib/inner.jar")
    with zipfile.ZipFile(io.BytesIO(inner)) as zf:
        assert zf.getinfo("zeros.bin").file_size == crafted.GiB // 4


def test_huge_dpkg_status() -> None:
    _, blob = oci_parts(crafted.huge_dpkg_status_image())
    with igzip.open(blob, "rb") as gz, tarfile.open(fileobj=gz, mode="r|") as tar:
        for member in tar:
            if member.name == "var/lib/dpkg/status":
                assert member.size >= 300 * crafted.MB
                head = tar.extractfile(member).read(4096)  # type: ignore[union-attr]
                break
        else:
            pytest.fail("no status file")
    assert head.startswith(b"Package: garrison-fake-0\nStatus: install ok installed\n")


def test_digest_mismatch_oci() -> None:
    manifest, blob = oci_parts(crafted.digest_mismatch_image("oci"))
    assert "sha256:" + hashlib.sha256(blob.read_bytes()).hexdigest() != manifest["layers"][0]["digest"]
    igzip.decompress(blob.read_bytes())  # still a valid gzip: only the digest is wrong


def test_digest_mismatch_archive() -> None:
    with tarfile.open(crafted.digest_mismatch_image("archive")) as tar:
        [entry] = json.load(tar.extractfile("manifest.json"))  # type: ignore[arg-type]
        config = json.load(tar.extractfile(entry["Config"]))  # type: ignore[arg-type]
        layer = tar.extractfile(entry["Layers"][0]).read()  # type: ignore[union-attr]
    assert "sha256:" + hashlib.sha256(layer).hexdigest() != config["rootfs"]["diff_ids"][0]


def test_missing_blob() -> None:
    _, blob = oci_parts(crafted.missing_blob_image("oci"))
    assert not blob.exists()
    with tarfile.open(crafted.missing_blob_image("archive")) as tar:
        [entry] = json.load(tar.extractfile("manifest.json"))  # type: ignore[arg-type]
        assert entry["Layers"][0] not in tar.getnames()


def test_manifest_not_json() -> None:
    layout = crafted.manifest_not_json_image("oci")
    index = json.loads((layout / "index.json").read_text())
    data = (layout / "blobs/sha256" / index["manifests"][0]["digest"].split(":")[1]).read_bytes()
    assert "sha256:" + hashlib.sha256(data).hexdigest() == index["manifests"][0]["digest"]
    with pytest.raises(json.JSONDecodeError):
        json.loads(data)
    with tarfile.open(crafted.manifest_not_json_image("archive")) as tar, pytest.raises(json.JSONDecodeError):
        json.load(tar.extractfile("manifest.json"))  # type: ignore[arg-type]


def test_every_generator_returns_an_existing_path() -> None:
    for name, make in crafted.GENERATORS.items():
        path = make()
        assert path.exists(), name
        assert crafted.oci_ref(path).startswith(("oci:", "docker-archive:"))
