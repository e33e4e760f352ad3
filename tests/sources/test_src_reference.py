"""Reference parsing: every syntax a user may type, and the Docker Hub defaults."""

from __future__ import annotations

import pytest

from garrison.errors import UsageError
from garrison.model import SourceKind
from garrison.sources.reference import parse_reference, parse_registry_ref


@pytest.mark.parametrize(
    ("text", "host", "api_host", "repo", "tag", "digest"),
    [
        ("alpine", "docker.io", "registry-1.docker.io", "library/alpine", "latest", ""),
        ("alpine:3.19", "docker.io", "registry-1.docker.io", "library/alpine", "3.19", ""),
        ("bitnami/redis:7", "docker.io", "registry-1.docker.io", "bitnami/redis", "7", ""),
        ("docker.io/library/debian:12", "docker.io", "registry-1.docker.io", "library/debian", "12", ""),
        ("index.docker.io/nginx", "docker.io", "registry-1.docker.io", "library/nginx", "latest", ""),
        ("127.0.0.1:5000/app:1", "127.0.0.1:5000", "127.0.0.1:5000", "app", "1", ""),
        ("localhost/a/b/c", "localhost", "localhost", "a/b/c", "latest", ""),
        ("ghcr.io/org/img@sha256:" + "a" * 64, "ghcr.io", "ghcr.io", "org/img", "", "sha256:" + "a" * 64),
        (
            "r.example.com:443/x:v1@sha256:" + "b" * 64,
            "r.example.com:443",
            "r.example.com:443",
            "x",
            "v1",
            "sha256:" + "b" * 64,
        ),
        ("docker://quay.io/prom/node:v1", "quay.io", "quay.io", "prom/node", "v1", ""),
    ],
)
def test_registry_refs(text: str, host: str, api_host: str, repo: str, tag: str, digest: str) -> None:
    r = parse_registry_ref(text)
    assert (r.host, r.api_host, r.repository, r.tag, r.digest) == (host, api_host, repo, tag, digest)
    assert r.reference == (digest or tag)


@pytest.mark.parametrize("bad", ["", "UPPER/case", "a:b:c", "x@sha256:zz", "repo:-tag", "host:99999x/a", "a//b"])
def test_bad_registry_refs(bad: str) -> None:
    with pytest.raises(UsageError):
        parse_registry_ref(bad)


def test_prefixed_refs(tmp_path) -> None:  # type: ignore[no-untyped-def]
    r = parse_reference(f"oci:{tmp_path}")
    assert (r.kind, r.path, r.tag) == (SourceKind.OCI, str(tmp_path), "")
    r = parse_reference(f"oci:{tmp_path}:v2")
    assert (r.kind, r.path, r.tag) == (SourceKind.OCI, str(tmp_path), "v2")
    weird = tmp_path / "dir:with:colons"
    weird.mkdir()
    assert parse_reference(f"oci:{weird}").path == str(weird)
    assert parse_reference("docker-archive:/x/y.tar").path == "/x/y.tar"
    assert parse_reference("dir:/").kind is SourceKind.DIR
    r = parse_reference("docker:debian:12")
    assert (r.kind, r.image) == (SourceKind.DOCKER, "debian:12")
    assert parse_reference("debian:12").kind is SourceKind.REGISTRY
    for bad in ("oci:", "dir:", "docker:", "docker-archive:", "  "):
        with pytest.raises(UsageError):
            parse_reference(bad)
