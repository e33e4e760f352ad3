"""``docker:IMAGE`` against a real, private Docker daemon (Engine API over its unix socket)."""

from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path

import pytest
from tests.sources.toy_analyzers import ToyOS, ToyPkgs
from tests.support.imagewriter import File, Layer, build_image

from garrison.config import Settings
from garrison.errors import NotFoundError, SourceError
from garrison.inventory.scan import scan_image
from garrison.model import Inventory, SourceKind
from garrison.progress import NO_PROGRESS
from garrison.sources import open_source

pytestmark = [pytest.mark.docker, pytest.mark.slow]


def scan(ref: str, settings: Settings) -> Inventory:
    with open_source(ref, settings).open() as img:
        return scan_image(img, [ToyOS(), ToyPkgs()], settings, NO_PROGRESS)


def _save_events(dockerd, since: float) -> list[dict]:  # type: ignore[no-untyped-def,type-arg]
    """``save`` (export) events the daemon recorded since ``since`` — the proof of what was read."""
    out = dockerd.cli(
        "events",
        "--since",
        str(since),
        "--until",
        str(time.time() + 1),
        "--filter",
        "type=image",
        "--filter",
        "event=save",
        "--format",
        "{{json .}}",
    ).stdout
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def test_docker_daemon_source(dockerd, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    refs = build_image(
        [
            Layer(
                entries=[
                    File("etc/os-release", b"ID=debian\nVERSION_ID=12\n"),
                    File("var/lib/toy/status", b"libc6 2.36\n"),
                ]
            ),
            Layer(entries=[File("app/a.pyinfo", b"a 1")]),
        ],
        work=tmp_path / "w",
        archive=tmp_path / "img.tar",
        repo="garrison/daemon-test",
        tag="v1",
    )
    assert dockerd.load(refs.archive) == ["garrison/daemon-test:v1"]
    settings = Settings(cache_dir=tmp_path / "cache", docker_host=dockerd.host)
    start = time.time() - 1
    inv = scan("docker:garrison/daemon-test:v1", settings)
    assert [(p.name, p.version) for p in inv.packages] == [("libc6", "2.36"), ("a", "1")]
    assert inv.artifact.kind is SourceKind.DOCKER
    assert [la.diff_id for la in inv.artifact.layers] == list(refs.diff_ids)
    assert "garrison/daemon-test:v1" in inv.artifact.repo_tags
    assert not list((tmp_path / "cache" / "tmp").iterdir()), "the exported archive must be deleted"
    assert len(_save_events(dockerd, start)) == 1

    warm_start = time.time()
    time.sleep(1.1)
    warm = scan("docker:garrison/daemon-test:v1", settings)
    assert warm.packages == inv.packages
    assert _save_events(dockerd, warm_start) == [], "a warm scan must not export the image"


def test_docker_daemon_errors(dockerd, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    settings = Settings(cache_dir=tmp_path / "cache", docker_host=dockerd.host)
    with pytest.raises(NotFoundError):
        scan("docker:no/such-image:1", settings)
    with pytest.raises(SourceError, match="socket"):
        scan("docker:x", replace(settings, docker_host=f"unix://{tmp_path}/nope.sock"))
