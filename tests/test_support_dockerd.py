"""The private dockerd starts loopback-only, loads our docker archive and runs it."""

from __future__ import annotations

import json

import pytest
from tests.support.dockerd import Dockerd, daemon_config
from tests.support.images import BuiltImages

pytestmark = [pytest.mark.slow, pytest.mark.docker]


def test_config_never_touches_host_network(tmp_path: object) -> None:
    from pathlib import Path

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
