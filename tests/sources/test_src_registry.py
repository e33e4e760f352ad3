"""The registry client against real registries (Debian's docker-registry, distribution 2.8): anonymous
over plain HTTP, HTTP Basic (htpasswd), Bearer tokens (a real token server), and TLS with a private CA."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest
from tests.sources.toy_analyzers import ToyOS, ToyPkgs
from tests.support.imagewriter import (
    File,
    ImageRefs,
    Layer,
    PlatformImage,
    build_image,
    prepare_blob,
    write_layer_tar,
    write_oci_index_layout,
)
from tests.support.registry import Registry

from garrison.config import Settings
from garrison.errors import AuthError, NotFoundError, RegistryError
from garrison.inventory.scan import scan_image
from garrison.model import Inventory, SourceKind
from garrison.progress import NO_PROGRESS
from garrison.sources import open_source
from garrison.sources.registry import docker_config_credentials, parse_challenge

pytestmark = [pytest.mark.registry, pytest.mark.slow]

LAYERS = [
    Layer(
        entries=[
            File("etc/os-release", b"ID=debian\nVERSION_ID=12\n"),
            File("var/lib/toy/status", b"libc6 2.36\n"),
        ]
    ),
    Layer(entries=[File("var/lib/toy/status", b"libc6 2.36\ncurl 8\n"), File("app/a.pyinfo", b"a 1")]),
]
EXPECTED = [("deb", "curl", "8"), ("deb", "libc6", "2.36"), ("pypi", "a", "1")]


def push(reg: Registry, src: str, repo_tag: str, all_platforms: bool = False) -> None:
    """skopeo copy into the registry (TLS pushes skip verification: the scanner's side is under test)."""
    if not shutil.which("skopeo"):
        pytest.skip("skopeo not installed")
    cmd = ["skopeo", "copy", "--quiet", "--dest-tls-verify=false"]
    if all_platforms:
        cmd.append("--all")
    if reg.username:
        cmd += ["--dest-creds", f"{reg.username}:{reg.password}"]
    subprocess.run([*cmd, src, f"docker://{reg.host}/{repo_tag}"], check=True, capture_output=True, timeout=120)


def settings_for(reg: Registry, cache: Path, **kw: object) -> Settings:
    s = Settings(
        cache_dir=cache,
        username=reg.username or "",
        password=reg.password or "",
        insecure_registries=(reg.host,) if reg.scheme == "http" else (),
        ca_file=str(reg.ca_file or ""),
    )
    return replace(s, **kw)  # type: ignore[arg-type]


def scan(ref: str, settings: Settings) -> Inventory:
    with open_source(ref, settings).open() as img:
        return scan_image(img, [ToyOS(), ToyPkgs()], settings, NO_PROGRESS)


def summary(inv: Inventory) -> list[tuple[str, str, str]]:
    return [(p.type.value, p.name, p.version) for p in inv.packages]


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> ImageRefs:
    d = tmp_path_factory.mktemp("reg-img")
    return build_image(LAYERS, work=d / "w", oci_dir=d / "oci")


@pytest.fixture(params=["registry_plain", "registry_htpasswd", "registry_token", "registry_tls"])
def registry(request: pytest.FixtureRequest, image: ImageRefs) -> Registry:
    reg: Registry = request.getfixturevalue(request.param)
    push(reg, image.oci_ref, "toy/app:1")
    return reg


def test_pull_and_scan(registry: Registry, image: ImageRefs, tmp_path: Path) -> None:
    inv = scan(registry.ref("toy/app:1"), settings_for(registry, tmp_path / "c", no_cache=True))
    assert summary(inv) == EXPECTED
    a = inv.artifact
    assert a.kind is SourceKind.REGISTRY
    assert [la.diff_id for la in a.layers] == list(image.diff_ids)
    assert a.digest.startswith("sha256:") and a.repo_digests == (f"{registry.host}/toy/app@{a.digest}",)
    # Pinned by digest gives the same image.
    pinned = scan(f"{registry.host}/toy/app@{a.digest}", settings_for(registry, tmp_path / "c", no_cache=True))
    assert summary(pinned) == EXPECTED


def test_warm_scan_downloads_no_blob(registry: Registry, image: ImageRefs, tmp_path: Path) -> None:
    settings = settings_for(registry, tmp_path / "cache")
    cold = scan(registry.ref("toy/app:1"), settings)
    # Remove the layer blobs from the registry's storage: a warm scan must not need them.
    push(registry, image.oci_ref, "toy/warm:1")
    blobs = registry.workdir / "data" / "docker" / "registry" / "v2" / "blobs" / "sha256"
    saved: dict[Path, bytes] = {}
    for d in image.layer_digests:
        blob = blobs / d[7:9] / d[7:] / "data"
        saved[blob] = blob.read_bytes()
        blob.unlink()
    try:
        warm = scan(registry.ref("toy/warm:1"), settings)
        assert warm.packages == cold.packages
        with pytest.raises((NotFoundError, RegistryError)):
            scan(registry.ref("toy/warm:1"), replace(settings, no_cache=True))
    finally:
        for path, data in saved.items():
            path.write_bytes(data)


def test_missing_tag(registry: Registry, tmp_path: Path) -> None:
    with pytest.raises(NotFoundError):
        scan(registry.ref("toy/app:nope"), settings_for(registry, tmp_path / "c"))


@pytest.mark.parametrize("kind", ["registry_htpasswd", "registry_token"])
def test_wrong_or_missing_password(kind: str, request: pytest.FixtureRequest, image: ImageRefs, tmp_path: Path) -> None:
    reg: Registry = request.getfixturevalue(kind)
    push(reg, image.oci_ref, "toy/app:1")
    with pytest.raises(AuthError):
        scan(reg.ref("toy/app:1"), settings_for(reg, tmp_path, password="wrong"))
    with pytest.raises(AuthError):
        scan(reg.ref("toy/app:1"), settings_for(reg, tmp_path, username="", password=""))


def test_docker_config_credentials(
    registry_htpasswd: Registry, image: ImageRefs, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    push(registry_htpasswd, image.oci_ref, "toy/app:1")
    cfg = tmp_path / "dockercfg"
    cfg.mkdir()
    auth = base64.b64encode(f"{registry_htpasswd.username}:{registry_htpasswd.password}".encode()).decode()
    (cfg / "config.json").write_text(json.dumps({"auths": {f"http://{registry_htpasswd.host}": {"auth": auth}}}))
    monkeypatch.setenv("DOCKER_CONFIG", str(cfg))
    s = settings_for(registry_htpasswd, tmp_path / "c", username="", password="", no_cache=True)
    assert summary(scan(registry_htpasswd.ref("toy/app:1"), s)) == EXPECTED


def test_plain_http_needs_opt_in(registry_plain: Registry, image: ImageRefs, tmp_path: Path) -> None:
    push(registry_plain, image.oci_ref, "toy/app:1")
    with pytest.raises(RegistryError, match="--insecure-registry 127"):
        scan(registry_plain.ref("toy/app:1"), settings_for(registry_plain, tmp_path, insecure_registries=""))


def test_tls_needs_the_ca(registry_tls: Registry, image: ImageRefs, tmp_path: Path) -> None:
    push(registry_tls, image.oci_ref, "toy/app:1")
    with pytest.raises(RegistryError, match="certificate"):
        scan(registry_tls.ref("toy/app:1"), settings_for(registry_tls, tmp_path, ca_file=""))
    inv = scan(registry_tls.ref("toy/app:1"), settings_for(registry_tls, tmp_path, tls_skip_verify=True, ca_file=""))
    assert summary(inv) == EXPECTED


def test_manifest_list_platform_selection(registry_token: Registry, tmp_path: Path) -> None:
    blobs = tmp_path / "oci" / "blobs" / "sha256"
    images = []
    for arch, variant in (("amd64", None), ("arm64", "v8")):
        tar = write_layer_tar(
            tmp_path / f"{arch}.tar", Layer(entries=[File("var/lib/toy/status", f"only-{arch} 1\n".encode())])
        )
        images.append(PlatformImage([prepare_blob(tar, blobs, "gzip")], arch, variant=variant))
    write_oci_index_layout(tmp_path / "oci", images, tags=["multi"])
    push(registry_token, f"oci:{tmp_path / 'oci'}:multi", "toy/multi:1", all_platforms=True)
    base = settings_for(registry_token, tmp_path / "c", no_cache=True)
    for platform, name in (("linux/amd64", "only-amd64"), ("linux/arm64/v8", "only-arm64")):
        inv = scan(registry_token.ref("toy/multi:1"), replace(base, platform=platform))
        assert [p.name for p in inv.packages] == [name]
    with pytest.raises(NotFoundError, match="platform"):
        scan(registry_token.ref("toy/multi:1"), replace(base, platform="linux/ppc64le"))


def test_parse_challenge() -> None:
    scheme, params = parse_challenge(
        'Bearer realm="https://auth.example/token",service="reg",scope="repository:a/b:pull"'
    )
    assert scheme == "bearer"
    assert params == {"realm": "https://auth.example/token", "service": "reg", "scope": "repository:a/b:pull"}
    assert parse_challenge('Basic realm="x"') == ("basic", {"realm": "x"})


def test_docker_config_lookup(tmp_path: Path) -> None:
    cfg = tmp_path / "config.json"
    hub = base64.b64encode(b"hubuser:hubpass").decode()
    cfg.write_text(
        json.dumps(
            {
                "auths": {
                    "https://index.docker.io/v1/": {"auth": hub},
                    "reg.example:5000": {"username": "u", "password": "p"},
                }
            }
        )
    )
    assert docker_config_credentials("docker.io", cfg) == ("hubuser", "hubpass")
    assert docker_config_credentials("reg.example:5000", cfg) == ("u", "p")
    assert docker_config_credentials("other", cfg) is None
