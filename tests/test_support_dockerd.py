"""The private dockerd starts loopback-only, loads our docker archive and runs it."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import pytest
from tests.support.dockerd import Dockerd, daemon_config
from tests.support.images import BuiltImages
from tests.support.imagewriter import Dir, File, Layer, prepare_blob, write_docker25_archive, write_layer_tar

pytestmark = [pytest.mark.slow, pytest.mark.docker]


def test_config_never_touches_host_network() -> None:
    cfg = daemon_config(Path("/tmp/x"))
    assert cfg["bridge"] == "none"
    assert cfg["iptables"] is False and cfg["ip-forward"] is False and cfg["ip-masq"] is False
    assert cfg["hosts"] == ["unix:///tmp/x/docker.sock"]


def test_load_and_run_debian(dockerd: Dockerd, test_images: BuiltImages) -> None:
    assert dockerd.socket.is_socket()
    assert dockerd.load(test_images.debian_archive) == ["garrison/debian:12"]
    inspect = json.loads(dockerd.cli("image", "inspect", "garrison/debian:12").stdout)[0]
    assert tuple(inspect["RootFS"]["Layers"]) == test_images.debian.diff_ids
    out = dockerd.cli("run", "--rm", "--network", "none", "garrison/debian:12", "cat", "/etc/debian_version")
    assert out.stdout.strip().startswith("12")
    info = json.loads(dockerd.cli("info", "--format", "{{json .}}").stdout)
    assert info["DockerRootDir"].startswith(str(dockerd.root))


def test_docker_loads_docker25_style_archive(dockerd: Dockerd, tmp_path: Path) -> None:
    """The Docker 25+ ``docker save`` layout our writer emits is accepted by a real daemon too."""
    layer = Layer(entries=[Dir("etc"), File("etc/hello", b"docker25\n")])
    tar = write_layer_tar(tmp_path / "l.tar", layer)
    blob = prepare_blob(tar, tmp_path / "blobs", "none")
    write_docker25_archive(tmp_path / "img.tar", [blob], ["garrison/d25:1"])
    with tarfile.open(tmp_path / "img.tar") as t:
        names = set(t.getnames())
        [entry] = json.load(t.extractfile("manifest.json"))  # type: ignore[arg-type]
    assert {"oci-layout", "index.json", "manifest.json"} <= names
    assert entry["Layers"] == [f"blobs/sha256/{tar.diff_id[7:]}"]
    assert dockerd.load(tmp_path / "img.tar") == ["garrison/d25:1"]
    inspect = json.loads(dockerd.cli("image", "inspect", "garrison/d25:1").stdout)[0]
    assert inspect["RootFS"]["Layers"] == [tar.diff_id]
