"""Registry protocol edge cases a real distribution server will not produce on demand: busy answers,
schema1 manifests, wrong Content-Types, lying digests, oversize manifests, tampered blobs.

The server here is a function behind httpx's transport seam (``httpx.MockTransport``) that serves the
real blobs of an OCI layout written by the test image writer; the client under test is the real one.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
from tests.sources.toy_analyzers import ToyOS, ToyPkgs
from tests.support.imagewriter import File, ImageRefs, Layer, build_image

from garrison.config import Settings
from garrison.errors import BadImageError, DigestMismatchError, LimitExceededError, RegistryError
from garrison.inventory.scan import scan_image
from garrison.model import Inventory
from garrison.progress import NO_PROGRESS
from garrison.sources.reference import parse_registry_ref
from garrison.sources.registry import RegistrySource

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
Handler = Callable[[httpx.Request], httpx.Response | None]


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> ImageRefs:
    d = tmp_path_factory.mktemp("proto")
    return build_image([Layer(entries=[File("var/lib/toy/status", b"libc6 2.36\n")])], work=d / "w", oci_dir=d / "oci")


class FakeRegistry:
    """Serves ``/v2/toy/app/manifests/1`` and blobs from an OCI layout; ``override`` can answer first."""

    def __init__(self, refs: ImageRefs) -> None:
        assert refs.oci_dir is not None
        self.blobs = refs.oci_dir / "blobs" / "sha256"
        self.manifest = (self.blobs / refs.manifest_digest[7:]).read_bytes()
        self.override: Handler | None = None
        self.requests: list[str] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request.url.path)
        if self.override is not None:
            resp = self.override(request)
            if resp is not None:
                return resp
        path = request.url.path
        if path.endswith("/manifests/1") or "/manifests/sha256:" in path:
            return httpx.Response(200, content=self.manifest, headers={"Content-Type": OCI_MANIFEST})
        if "/blobs/" in path:
            blob = self.blobs / path.rsplit(":", 1)[1]
            if blob.exists():
                return httpx.Response(200, content=blob.read_bytes())
        return httpx.Response(404, json={"errors": [{"code": "NOT_FOUND", "message": path}]})


def scan(fake: FakeRegistry, tmp_path: Path, ref: str = "reg.test/toy/app:1", **kw: object) -> Inventory:
    settings = replace(Settings(cache_dir=tmp_path / "c", no_cache=True), **kw)  # type: ignore[arg-type]
    source = RegistrySource(parse_registry_ref(ref), settings, transport=httpx.MockTransport(fake))
    with source.open() as img:
        return scan_image(img, [ToyOS(), ToyPkgs()], settings, NO_PROGRESS)


def test_happy_path(image: ImageRefs, tmp_path: Path) -> None:
    inv = scan(FakeRegistry(image), tmp_path)
    assert [p.name for p in inv.packages] == ["libc6"]
    assert inv.artifact.digest == image.manifest_digest


def test_busy_answers_are_retried(image: ImageRefs, tmp_path: Path) -> None:
    fake = FakeRegistry(image)
    busy = {"left": 2}

    def flaky(request: httpx.Request) -> httpx.Response | None:
        if busy["left"]:
            busy["left"] -= 1
            return httpx.Response(503, headers={"Retry-After": "0"})
        return None

    fake.override = flaky
    assert [p.name for p in scan(fake, tmp_path).packages] == ["libc6"]
    assert busy["left"] == 0


def test_always_busy_is_a_registry_error(image: ImageRefs, tmp_path: Path) -> None:
    fake = FakeRegistry(image)
    fake.override = lambda r: httpx.Response(503, headers={"Retry-After": "0"})
    with pytest.raises(RegistryError, match="503"):
        scan(fake, tmp_path)


def test_schema1_is_refused(image: ImageRefs, tmp_path: Path) -> None:
    fake = FakeRegistry(image)
    ctype = "application/vnd.docker.distribution.manifest.v1+prettyjws"
    fake.override = lambda r: (
        httpx.Response(200, content=b'{"schemaVersion":1}', headers={"Content-Type": ctype})
        if "/manifests/" in r.url.path
        else None
    )
    with pytest.raises(RegistryError, match="schema1"):
        scan(fake, tmp_path)


def test_content_type_must_match_the_document(image: ImageRefs, tmp_path: Path) -> None:
    fake = FakeRegistry(image)
    index_type = "application/vnd.oci.image.index.v1+json"
    fake.override = lambda r: (
        httpx.Response(200, content=fake.manifest, headers={"Content-Type": "text/html"})
        if r.url.path.endswith("/manifests/1")
        else None
    )
    doc = json.loads(fake.manifest)
    assert "mediaType" in doc  # text/html with a typed body is accepted on the body's word
    assert [p.name for p in scan(fake, tmp_path).packages] == ["libc6"]
    fake.override = lambda r: (
        httpx.Response(200, content=fake.manifest, headers={"Content-Type": index_type})
        if r.url.path.endswith("/manifests/1")
        else None
    )
    with pytest.raises(BadImageError, match="served as"):
        scan(fake, tmp_path)


def test_lying_digest_header(image: ImageRefs, tmp_path: Path) -> None:
    fake = FakeRegistry(image)
    fake.override = lambda r: (
        httpx.Response(
            200,
            content=fake.manifest,
            headers={"Content-Type": OCI_MANIFEST, "Docker-Content-Digest": "sha256:" + "1" * 64},
        )
        if r.url.path.endswith("/manifests/1")
        else None
    )
    with pytest.raises(DigestMismatchError):
        scan(fake, tmp_path)


def test_pinned_digest_is_verified(image: ImageRefs, tmp_path: Path) -> None:
    fake = FakeRegistry(image)
    wrong = "sha256:" + hashlib.sha256(b"other").hexdigest()
    with pytest.raises(DigestMismatchError):
        scan(fake, tmp_path, ref=f"reg.test/toy/app@{wrong}")


def test_oversize_manifest(image: ImageRefs, tmp_path: Path) -> None:
    fake = FakeRegistry(image)
    with pytest.raises(LimitExceededError):
        scan(fake, tmp_path, max_manifest_bytes=100)


def test_tampered_blob(image: ImageRefs, tmp_path: Path) -> None:
    fake = FakeRegistry(image)
    config_digest = json.loads(fake.manifest)["layers"][0]["digest"]

    def tamper(r: httpx.Request) -> httpx.Response | None:
        if r.url.path.endswith(config_digest):
            real = (fake.blobs / config_digest[7:]).read_bytes()
            return httpx.Response(200, content=real[:-1] + bytes([real[-1] ^ 1]))
        return None

    fake.override = tamper
    with pytest.raises((DigestMismatchError, BadImageError)):
        scan(fake, tmp_path)


def test_bearer_challenge_flow(image: ImageRefs, tmp_path: Path) -> None:
    """401 with a Bearer challenge → token fetched once with Basic credentials → retried with it."""
    fake = FakeRegistry(image)
    tokens: list[str] = []

    def auth(r: httpx.Request) -> httpx.Response | None:
        if r.url.host == "auth.test":
            assert r.headers["authorization"].startswith("Basic ")
            assert r.url.params["scope"] == "repository:toy/app:pull"
            tokens.append("t1")
            return httpx.Response(200, json={"token": "t1"})
        if r.headers.get("authorization") != "Bearer t1":
            return httpx.Response(
                401,
                headers={
                    "WWW-Authenticate": 'Bearer realm="https://auth.test/token",service="reg.test",'
                    'scope="repository:toy/app:pull"'
                },
            )
        return None

    fake.override = auth
    inv = scan(fake, tmp_path, username="u", password="p")
    assert [p.name for p in inv.packages] == ["libc6"]
    assert tokens == ["t1"], "the token is cached for the whole scan"
